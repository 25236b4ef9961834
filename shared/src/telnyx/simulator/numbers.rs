//! The simulated account's phone numbers: `GET /v2/phone_numbers` with
//! Telnyx's filters, pages and record shape. The platform buys a number for
//! a church and sets the church's id as its customer reference; the
//! simulator's `assign` and `buy` stand in for that purchase.

use std::sync::Mutex;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use rand::Rng;
use serde_json::json;

use super::{error, lock, uuid_like};
use crate::telnyx::api::PhoneNumberRecord;

pub const ROUTE: &str = "/v2/phone_numbers";

/// The simulated account's messaging profile (its webhook: `set_profile_webhook`).
pub const MESSAGING_PROFILE_ID: &str = "40017a3c-5f2e-4d7b-9a61-3c0d2b7e9f10";

/// Telnyx's largest page.
const MAX_PAGE_SIZE: usize = 250;

#[derive(Default)]
pub struct Numbers {
    records: Mutex<Vec<PhoneNumberRecord>>,
}

impl Numbers {
    /// The account holds `number`, active, bought for `customer_reference`
    /// (replacing what it held of the number before).
    pub fn assign(&self, number: &str, customer_reference: &str) {
        let mut records = lock(&self.records);
        records.retain(|r| r.phone_number != number);
        records.push(PhoneNumberRecord {
            id: uuid_like(),
            record_type: "phone_number".into(),
            phone_number: number.to_owned(),
            status: "active".into(),
            customer_reference: Some(customer_reference.to_owned()).filter(|c| !c.is_empty()),
            purchased_at: Some(chrono::Utc::now().to_rfc3339()),
            // On the account's one messaging profile, whose webhook is the stack's.
            messaging_profile_id: Some(MESSAGING_PROFILE_ID.into()),
        });
    }

    /// Buys a fresh number for `customer_reference`: +1 720 555 and four
    /// digits the account does not hold yet.
    pub fn buy(&self, customer_reference: &str) -> String {
        let number = loop {
            let candidate = format!("+1720555{:04}", rand::rng().random_range(0..10_000));
            if !lock(&self.records)
                .iter()
                .any(|r| r.phone_number == candidate)
            {
                break candidate;
            }
        };
        self.assign(&number, customer_reference);
        number
    }

    /// The number's status changes (`ported_out`, `deleted`, …), as when it leaves the account.
    pub fn set_status(&self, number: &str, status: &str) {
        for record in lock(&self.records)
            .iter_mut()
            .filter(|r| r.phone_number == number)
        {
            record.status = status.to_owned();
        }
    }

    /// `GET /v2/phone_numbers?filter[phone_number]=…&filter[customer_reference]=…&filter[status]=…&page[number]=…&page[size]=…`
    pub fn list(&self, query: &str) -> Response<Full<Bytes>> {
        let mut phone = None;
        let mut reference = None;
        let mut status = None;
        let mut page_number = 1usize;
        let mut page_size = 20usize;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "filter[phone_number]" => phone = Some(value.into_owned()),
                "filter[customer_reference]" => reference = Some(value.into_owned()),
                "filter[status]" => status = Some(value.into_owned()),
                "page[number]" | "page[size]" => {
                    let Some(n) = value.parse::<usize>().ok().filter(|n| *n >= 1) else {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "10015",
                            "Bad request",
                            &format!("'{name}' must be a positive integer."),
                        );
                    };
                    if name == "page[number]" {
                        page_number = n;
                    } else if n > MAX_PAGE_SIZE {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "10015",
                            "Bad request",
                            "'page[size]' must be at most 250.",
                        );
                    } else {
                        page_size = n;
                    }
                }
                _ => {}
            }
        }
        let matching: Vec<PhoneNumberRecord> = lock(&self.records)
            .iter()
            .filter(|r| {
                phone
                    .as_deref()
                    .is_none_or(|p| matches_digits(&r.phone_number, p))
            })
            .filter(|r| {
                reference
                    .as_deref()
                    .is_none_or(|c| r.customer_reference.as_deref() == Some(c))
            })
            .filter(|r| status.as_deref().is_none_or(|s| r.status == s))
            .cloned()
            .collect();
        let total = matching.len();
        let page: Vec<&PhoneNumberRecord> = matching
            .iter()
            .skip((page_number - 1).saturating_mul(page_size))
            .take(page_size)
            .collect();
        let body = json!({
            "data": page,
            "meta": {
                "page_number": page_number, "page_size": page_size,
                "total_pages": total.div_ceil(page_size), "total_results": total,
            },
        });
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Telnyx's `filter[phone_number]`: at least three digits, matching part of
/// the number; anything but digits matches nothing.
fn matches_digits(number: &str, filter: &str) -> bool {
    filter.len() >= 3 && filter.chars().all(|c| c.is_ascii_digit()) && number.contains(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn listed(numbers: &Numbers, query: &str) -> (StatusCode, serde_json::Value) {
        let response = numbers.list(query);
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn filters_as_telnyx_documents_them() {
        let numbers = Numbers::default();
        numbers.assign("+17205550100", "church-a");
        numbers.assign("+17205550199", "church-b");
        let (_, by_digits) = listed(&numbers, "filter%5Bphone_number%5D=17205550100").await;
        assert_eq!(by_digits["data"].as_array().unwrap().len(), 1);
        assert_eq!(by_digits["data"][0]["customer_reference"], "church-a");
        let (_, partial) = listed(&numbers, "filter[phone_number]=555").await;
        assert_eq!(partial["meta"]["total_results"], 2);
        let (_, with_plus) = listed(&numbers, "filter[phone_number]=%2B17205550100").await;
        assert_eq!(with_plus["data"].as_array().unwrap().len(), 0);
        let (_, by_reference) = listed(&numbers, "filter[customer_reference]=church-b").await;
        assert_eq!(by_reference["data"][0]["phone_number"], "+17205550199");
        numbers.set_status("+17205550199", "ported_out");
        let (_, active) = listed(&numbers, "filter[status]=active").await;
        assert_eq!(active["meta"]["total_results"], 1);
    }

    #[tokio::test]
    async fn pages_and_refuses_bad_page_sizes() {
        let numbers = Numbers::default();
        for _ in 0..3 {
            numbers.buy("church-a");
        }
        let (_, second) = listed(&numbers, "page[size]=2&page[number]=2").await;
        assert_eq!(second["data"].as_array().unwrap().len(), 1);
        assert_eq!(second["meta"]["total_pages"], 2);
        let (status, refused) = listed(&numbers, "page[size]=251").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refused["errors"][0]["code"], "10015");
    }
}
