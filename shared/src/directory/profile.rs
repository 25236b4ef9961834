//! The church profile (`/api/admin/profile`) and its sending number.
//!
//! The EIN is sealed at rest and only ever shown as its last four digits.
//! The sending number is claimed across all churches (`NUMBER#+1…`): that
//! claim is also the index that routes an inbound text to its church.

use serde_json::{Map, Value, json};

use super::error::DirectoryError;
use super::members::Ctx;
use crate::domain::{ChurchId, PhoneNumber};
use crate::keys;
use crate::ports::table::{Cond, Key, TableError, TxOp, Update};

/// Profile fields stored as given (strings or null).
pub const TEXT_FIELDS: [&str; 13] = [
    "name",
    "email",
    "brandPhoneNumber",
    "streetAddress",
    "city",
    "state",
    "postalCode",
    "website",
    "entityType",
    "vertical",
    "timezone",
    "welcomeMessage",
    "helpReply",
];

/// The answer of `GET /api/admin/profile`: every field API.md lists, null when unset.
pub async fn view(ctx: &Ctx<'_>) -> Result<Value, DirectoryError> {
    let item = ctx
        .table
        .get(&keys::church_profile(ctx.church))
        .await?
        .ok_or(DirectoryError::NotFound("church"))?;
    let get = |k: &str| item.get(k).cloned().unwrap_or(Value::Null);
    let ein = match item.get("einSealed").and_then(Value::as_str) {
        Some(sealed) => {
            let ein = ctx.vault.open(sealed)?;
            json!(format!("*****{}", &ein[ein.len().saturating_sub(4)..]))
        }
        None => Value::Null,
    };
    let mut profile = Map::new();
    profile.insert("id".into(), get("id"));
    for field in ["name", "email", "createdAt", "updatedAt"] {
        profile.insert(field.into(), get(field));
    }
    profile.insert(
        "wantsPremiumDelivery".into(),
        json!(
            item.get("wantsPremiumDelivery")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        ),
    );
    profile.insert(
        "dlcStatus".into(),
        item.get("dlcStatus")
            .cloned()
            .unwrap_or(json!("not_started")),
    );
    for field in [
        "dlcBrandId",
        "dlcCampaignId",
        "dlcRegisteredAt",
        "dlcApprovedAt",
    ] {
        profile.insert(field.into(), get(field));
    }
    profile.insert("ein".into(), ein);
    for field in TEXT_FIELDS.iter().skip(2) {
        profile.insert((*field).into(), get(field));
    }
    for field in ["telnyxPhoneNumber", "quietHours"] {
        profile.insert(field.into(), get(field));
    }
    profile.insert(
        "sendingMps".into(),
        item.get("sendingMps").cloned().unwrap_or(json!(1)),
    );
    Ok(Value::Object(profile))
}

/// Validated changes: attribute → new value (`Null` clears), the EIN apart.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub set: Vec<(String, Value)>,
    pub ein: Option<Option<String>>,
}

pub async fn update(ctx: &Ctx<'_>, changes: ProfileChanges) -> Result<Value, DirectoryError> {
    let mut update = Update::default().set("updatedAt", ctx.now.to_rfc3339());
    for (attr, value) in changes.set {
        update = update.set(&attr, value);
    }
    match changes.ein {
        Some(Some(ein)) => update = update.set("einSealed", ctx.vault.seal(&ein)),
        Some(None) => update = update.remove("einSealed"),
        None => {}
    }
    match ctx
        .table
        .update(
            &keys::church_profile(ctx.church),
            update,
            Some(Cond::Exists),
        )
        .await
    {
        Ok(_) => view(ctx).await,
        Err(TableError::ConditionFailed) => Err(DirectoryError::NotFound("church")),
        Err(e) => Err(e.into()),
    }
}

pub fn number_claim(number: &PhoneNumber) -> Key {
    Key::new(format!("NUMBER#{}", number.as_e164()), "NUMBER")
}

/// The church that owns a sending number: how an inbound text finds its church.
pub async fn church_for_number(
    ctx_table: &dyn crate::ports::table::Table,
    number: &PhoneNumber,
) -> Result<Option<ChurchId>, TableError> {
    Ok(ctx_table.get(&number_claim(number)).await?.and_then(|i| {
        i.get("churchId")
            .and_then(Value::as_str)
            .and_then(|c| ChurchId::parse(c).ok())
    }))
}

/// Makes `number` the church's sending number (and releases its old one).
pub async fn link_number(ctx: &Ctx<'_>, number: &PhoneNumber) -> Result<(), DirectoryError> {
    let profile = ctx
        .table
        .get(&keys::church_profile(ctx.church))
        .await?
        .ok_or(DirectoryError::NotFound("church"))?;
    let current = profile
        .get("telnyxPhoneNumber")
        .and_then(Value::as_str)
        .and_then(|n| PhoneNumber::parse(n).ok());
    if current.as_ref() == Some(number) {
        return Ok(());
    }
    let claim = number_claim(number);
    let stamp = ctx.now.to_rfc3339();
    let mut ops = vec![
        TxOp::Put {
            item:
                json!({"pk": claim.pk, "sk": claim.sk, "churchId": ctx.church, "linkedAt": stamp})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            cond: Some(Cond::NotExists),
        },
        TxOp::Update {
            key: keys::church_profile(ctx.church),
            update: Update::default()
                .set("telnyxPhoneNumber", number.as_e164())
                .set("telnyxLinkedAt", stamp.clone())
                .set("updatedAt", stamp),
            cond: Some(Cond::Exists),
        },
    ];
    if let Some(old) = current {
        ops.push(TxOp::Delete {
            key: number_claim(&old),
            cond: Some(Cond::eq("churchId", ctx.church.to_string())),
        });
    }
    match ctx.table.transact(ops).await {
        Ok(()) => Ok(()),
        Err(TableError::TransactionCancelled { failed }) if failed.contains(&0) => {
            Err(DirectoryError::Conflict {
                code: "number_taken",
                field: "phoneNumber",
                message: "this number is already linked to another church".into(),
            })
        }
        Err(TableError::TransactionCancelled { .. }) => Err(DirectoryError::NotFound("church")),
        Err(e) => Err(e.into()),
    }
}
