//! Reading requests: JSON bodies into typed structs with errors that name
//! the field, and a collector for field-level validation.

use lambda_http::{Body, Request};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// The largest JSON body any route takes (uploads are multipart, elsewhere).
pub const MAX_JSON_BYTES: usize = 256 * 1024;

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// Parses a JSON object body into `T`: 415 for another content type, 413
/// past the size limit, 400 naming the field for a missing or mistyped one.
pub fn json<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes = body_bytes(req);
    if bytes.len() > MAX_JSON_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: MAX_JSON_BYTES,
        });
    }
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let is_json = content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !bytes.is_empty() && !is_json {
        return Err(ApiError::UnsupportedMediaType {
            expected: "application/json",
        });
    }
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::field("body", "malformed_json", "request body is not valid JSON");
        }
        let message = inner.to_string();
        // serde names a missing field in its message, not in the path.
        if let Some(rest) = message.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or("body");
            let field = if path == "." {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            return ApiError::field(&field, "required", format!("{field} is required"));
        }
        let field = if path == "." { "body".to_owned() } else { path };
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        ApiError::field(&field, "invalid_type", format!("{field}: {message}"))
    })
}

/// Collects field errors so one answer names every bad field.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    pub fn error(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, code, message));
    }

    /// A required text of `min..=max` characters, trimmed.
    pub fn text(
        &mut self,
        field: &str,
        value: Option<&str>,
        min: usize,
        max: usize,
    ) -> Option<String> {
        let Some(value) = value.map(str::trim) else {
            self.error(field, "required", format!("{field} is required"));
            return None;
        };
        self.bounded(field, value, min, max)
    }

    /// An optional text of at most `max` characters; blank counts as absent.
    pub fn optional_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        max: usize,
    ) -> Option<Option<String>> {
        match value.map(str::trim) {
            None | Some("") => Some(None),
            Some(v) => self.bounded(field, v, 1, max).map(Some),
        }
    }

    fn bounded(&mut self, field: &str, value: &str, min: usize, max: usize) -> Option<String> {
        let length = value.chars().count();
        if length < min {
            let message = if min == 1 {
                format!("{field} is required")
            } else {
                format!("{field} must be at least {min} characters")
            };
            self.error(
                field,
                if min == 1 { "required" } else { "too_short" },
                message,
            );
            None
        } else if length > max {
            self.error(
                field,
                "too_long",
                format!("{field} must be at most {max} characters"),
            );
            None
        } else {
            Some(value.to_owned())
        }
    }

    /// An email address: one `@`, a dot in the domain, no spaces, ≤ 254 bytes; lower-cased.
    pub fn email(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        let value = self.text(field, value, 1, 254)?;
        let valid = value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !value.chars().any(char::is_whitespace)
        });
        if !valid {
            self.error(
                field,
                "invalid_email",
                format!("{field} is not a valid email address"),
            );
            return None;
        }
        Some(value.to_lowercase())
    }

    /// A boolean, or the strings "true"/"false" some forms send; absent or
    /// null → `Some(None)`, anything else → a field error and `None`.
    pub fn flag(&mut self, field: &str, value: Option<&serde_json::Value>) -> Option<Option<bool>> {
        use serde_json::Value;
        match value {
            None | Some(Value::Null) => Some(None),
            Some(Value::Bool(b)) => Some(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Some(Some(s == "true")),
            Some(_) => {
                self.error(
                    field,
                    "invalid_type",
                    format!("{field} must be true or false"),
                );
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// The largest upload a route takes in one request.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// An uploaded file from a `multipart/form-data` body.
#[derive(Debug, Clone)]
pub struct Upload {
    pub bytes: bytes::Bytes,
    pub content_type: Option<String>,
    pub file_name: Option<String>,
}

/// Reads the multipart field `field`: 415 for another content type, 413
/// past the size limit, 400 naming the field when it is missing or broken.
pub async fn multipart_file(req: &Request, field: &str) -> Result<Upload, ApiError> {
    multipart_form(req, field).await.map(|form| form.file)
}

/// A `multipart/form-data` body: its one file and its text fields.
pub struct Form {
    pub file: Upload,
    pub texts: std::collections::HashMap<String, String>,
}

/// Text fields longer than this are not a form's text.
const MAX_FORM_TEXT_BYTES: usize = 64 * 1024;

/// Reads a form whose file is the part named `field`, with its text parts.
pub async fn multipart_form(req: &Request, field: &str) -> Result<Form, ApiError> {
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary =
        multer::parse_boundary(content_type).map_err(|_| ApiError::UnsupportedMediaType {
            expected: "multipart/form-data",
        })?;
    let body = bytes::Bytes::copy_from_slice(body_bytes(req));
    if body.len() > MAX_UPLOAD_BYTES + MAX_FORM_TEXT_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit_bytes: MAX_UPLOAD_BYTES,
        });
    }
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let broken = |e: multer::Error| {
        ApiError::field(
            field,
            "malformed_multipart",
            format!("the upload could not be read: {e}"),
        )
    };
    let mut file = None;
    let mut texts = std::collections::HashMap::new();
    while let Some(part) = multipart.next_field().await.map_err(broken)? {
        let name = part.name().unwrap_or_default().to_owned();
        if name == field && file.is_none() {
            let content_type = part.content_type().map(ToString::to_string);
            let file_name = part.file_name().map(str::to_owned);
            let bytes = part.bytes().await.map_err(broken)?;
            if bytes.len() > MAX_UPLOAD_BYTES {
                return Err(ApiError::FieldTooLarge(crate::error::FieldError::new(
                    field,
                    "file_too_large",
                    format!("{field} must be at most {MAX_UPLOAD_BYTES} bytes"),
                )));
            }
            file = Some(Upload {
                bytes,
                content_type,
                file_name,
            });
        } else if part.file_name().is_none() {
            let text = part.bytes().await.map_err(broken)?;
            if text.len() > MAX_FORM_TEXT_BYTES {
                return Err(ApiError::field(
                    &name,
                    "too_long",
                    format!("{name} is too long"),
                ));
            }
            let text = String::from_utf8(text.to_vec()).map_err(|_| {
                ApiError::field(&name, "invalid_text", format!("{name} must be UTF-8 text"))
            })?;
            texts.insert(name, text);
        }
    }
    match file {
        Some(file) => Ok(Form { file, texts }),
        None => Err(ApiError::field(
            field,
            "required",
            format!("multipart field `{field}` is required"),
        )),
    }
}
