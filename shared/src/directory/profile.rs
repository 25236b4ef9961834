//! The church profile (`/api/admin/profile`) and its sending number.
//!
//! The EIN is sealed at rest and answered in full (9 digits) to the
//! church's own admins: the frontend masks it on screen and refuses to save
//! a value that is not digits (API.md). It is never logged.
//! The sending number is one the platform's Telnyx account holds and
//! bought for this church (its customer reference is the church's id):
//! registration is open, so a church may never take a number that is not
//! its own — another church's published number, say. It is claimed across
//! all churches (`NUMBER#+1…`), and that claim is also the index that
//! routes an inbound text to its church; a released number is held back
//! from other churches for a while (`NumberClaim`).

use serde_json::{Map, Value, json};

use super::error::DirectoryError;
use super::members::Ctx;
use super::model::{ChurchProfile, NumberClaim};
use crate::auth::Role;
use crate::crypto::Field;
use crate::domain::{ChurchId, PhoneNumber};
use crate::keys;
use crate::ports::carrier::Carrier;
use crate::ports::table::{Cond, TableError, TxOp};
use crate::scheduling::quiet_hours::QuietHours;
use crate::store::{Entities, Transaction, TransactionError};

/// The parts of linking a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The number's claim: another church holds it.
    Claim,
    /// The profile (and the old number's release).
    Profile,
}

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
    let profile: ChurchProfile = ctx
        .table
        .load(&ChurchProfile::key_of(ctx.church))
        .await?
        .ok_or(DirectoryError::NotFound("church"))?;
    let ein = match &profile.ein_sealed {
        Some(sealed) => json!(ctx.vault.open(ctx.church, Field::Ein, sealed)?),
        None => Value::Null,
    };
    let stored = profile.fields();
    let field = |name: &str| stored.get(name).cloned().unwrap_or(Value::Null);
    let mut view = Map::new();
    for name in ["id", "name", "email", "createdAt", "updatedAt"] {
        view.insert(name.into(), field(name));
    }
    let premium = field("wantsPremiumDelivery").as_bool();
    view.insert(
        "wantsPremiumDelivery".into(),
        json!(premium.unwrap_or(false)),
    );
    // Until 10DLC registration (a later wave) says otherwise, "pending": the
    // original backend's default, and a status the frontend's badge knows.
    let dlc = field("dlcStatus");
    view.insert(
        "dlcStatus".into(),
        if dlc.is_null() { json!("pending") } else { dlc },
    );
    for name in [
        "dlcBrandId",
        "dlcCampaignId",
        "dlcRegisteredAt",
        "dlcApprovedAt",
    ] {
        view.insert(name.into(), field(name));
    }
    view.insert("ein".into(), ein);
    for name in TEXT_FIELDS.iter().skip(2) {
        view.insert((*name).into(), field(name));
    }
    view.insert("telnyxPhoneNumber".into(), field("telnyxPhoneNumber"));
    let quiet = QuietHours::of_profile(profile.quiet_hours.as_ref());
    view.insert("quietHours".into(), QuietHours::view(quiet));
    view.insert("sendingMps".into(), json!(profile.sending_mps.unwrap_or(1)));
    Ok(Value::Object(view))
}

/// Validated changes: attribute → new value (`Null` clears), the EIN apart.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub set: Vec<(String, Value)>,
    pub ein: Option<Option<String>>,
}

/// The sending rate is the number's, so only the registrant may state it.
fn authorize(role: Role, changes: &ProfileChanges) -> Result<(), DirectoryError> {
    if role != Role::Primary && changes.set.iter().any(|(attr, _)| attr == "sendingMps") {
        return Err(DirectoryError::Forbidden {
            code: "primary_admin_only",
            field: "sendingMps",
            message: "only the primary admin may change sendingMps".into(),
        });
    }
    Ok(())
}

/// The stored condition that `sendingMps` = `mps` is within what the
/// number allows, checked by the write itself (a registration lowering the
/// figure at the same moment cannot slip between a read and the write).
fn within_allowed(mps: u64) -> Cond {
    Cond::Or(vec![
        Cond::AttrNotExists("allowedMps".into()),
        Cond::Ge("allowedMps".into(), mps.into()),
    ])
}

pub async fn update(
    ctx: &Ctx<'_>,
    role: Role,
    changes: ProfileChanges,
) -> Result<Value, DirectoryError> {
    authorize(role, &changes)?;
    let mps = changes
        .set
        .iter()
        .find(|(attr, _)| attr == "sendingMps")
        .and_then(|(_, mps)| mps.as_u64());
    let new_zone = changes
        .set
        .iter()
        .find(|(attr, _)| attr == "timezone")
        .and_then(|(_, zone)| zone.as_str())
        .and_then(|zone| zone.parse::<chrono_tz::Tz>().ok());
    let sealed_ein = changes
        .ein
        .map(|e| e.map(|ein| ctx.vault.seal(ctx.church, Field::Ein, &ein)));
    let update = ChurchProfile::edit(changes.set, sealed_ein, &ctx.now.to_rfc3339());
    match ctx
        .table
        .update(
            &keys::church_profile(ctx.church),
            update,
            Some(match mps {
                Some(mps) => Cond::And(vec![Cond::Exists, within_allowed(mps)]),
                None => Cond::Exists,
            }),
        )
        .await
    {
        Ok(_) => {
            if let Some(zone) = new_zone {
                retime(ctx, zone).await?;
            }
            view(ctx).await
        }
        Err(TableError::ConditionFailed) => {
            let profile: ChurchProfile = ctx
                .table
                .load(&ChurchProfile::key_of(ctx.church))
                .await?
                .ok_or(DirectoryError::NotFound("church"))?;
            Err(DirectoryError::NotAllowed {
                code: "over_allowed_mps",
                field: "sendingMps",
                message: format!(
                    "sendingMps can be at most {}, what the church's number is registered for",
                    profile.allowed_mps()
                ),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The church that owns a sending number: how an inbound text finds its church.
pub async fn church_for_number(
    ctx_table: &dyn crate::ports::table::Table,
    number: &PhoneNumber,
) -> Result<Option<ChurchId>, TableError> {
    let claim: Option<NumberClaim> = ctx_table.load(&keys::number_claim(number)).await?;
    Ok(claim.map(|c| c.church_id))
}

/// A linked number: the messaging profile its texts' webhook is set on
/// (none: the operator still has to put it on one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub messaging_profile_id: Option<String>,
}

/// Makes `number` the church's sending number (and releases its old one
/// into its hold), once the carrier confirms the number is the account's
/// and bought for this church.
pub async fn link_number(
    ctx: &Ctx<'_>,
    carrier: &dyn Carrier,
    number: &PhoneNumber,
) -> Result<Linked, DirectoryError> {
    let profile: ChurchProfile = ctx
        .table
        .load(&ChurchProfile::key_of(ctx.church))
        .await?
        .ok_or(DirectoryError::NotFound("church"))?;
    let record = carrier
        .account_number(number)
        .await
        .map_err(DirectoryError::CarrierUnavailable)?;
    let church = ctx.church.to_string();
    let record = match record {
        Some(r) if r.active && r.assigned_to.as_deref() == Some(church.as_str()) => r,
        _ => {
            return Err(DirectoryError::NotAllowed {
                code: "number_not_assigned",
                field: "phoneNumber",
                message: "this number is not one the platform holds for your church; \
                          ask Koinonia support for a sending number"
                    .into(),
            });
        }
    };
    let linked = Linked {
        messaging_profile_id: record.messaging_profile_id,
    };
    let current = profile.sending_number();
    if current.as_ref() == Some(number) {
        return Ok(linked);
    }
    let stamp = ctx.now.to_rfc3339();
    let claim = NumberClaim::new(number, ctx.church, &stamp);
    let mut link = Transaction::new()
        .with(Part::Claim, claim.take(ctx.now)?)
        .with(
            Part::Profile,
            TxOp::Update {
                key: ChurchProfile::key_of(ctx.church),
                update: ChurchProfile::link_number(number, record.purchased_at.as_deref(), &stamp),
                cond: Some(Cond::Exists),
            },
        );
    if let Some(old) = current {
        link.add(
            Part::Profile,
            NumberClaim::release(&old, ctx.church, ctx.now),
        );
    }
    match link.commit(ctx.table).await {
        Ok(()) => Ok(linked),
        Err(e) if e.failed(Part::Claim) => Err(refused_claim(ctx, number).await),
        Err(TransactionError::Cancelled(_)) => Err(DirectoryError::NotFound("church")),
        Err(e) => Err(e.into()),
    }
}

/// Why another church's claim keeps `number`: it uses it, or released it
/// and its hold is not over.
async fn refused_claim(ctx: &Ctx<'_>, number: &PhoneNumber) -> DirectoryError {
    let claim: Option<NumberClaim> = ctx
        .table
        .load(&keys::number_claim(number))
        .await
        .ok()
        .flatten();
    match claim.and_then(|c| c.hold_ends(ctx.now)) {
        Some(ends) => DirectoryError::Conflict {
            code: "number_held",
            field: "phoneNumber",
            message: format!(
                "another church released this number recently; it is held for it until {}",
                ends.format("%Y-%m-%d")
            ),
        },
        None => DirectoryError::Conflict {
            code: "number_taken",
            field: "phoneNumber",
            message: "this number is already linked to another church".into(),
        },
    }
}

/// The church's recurring messages fall at their local times in its new zone.
async fn retime(ctx: &Ctx<'_>, zone: chrono_tz::Tz) -> Result<(), DirectoryError> {
    match crate::scheduling::recurring::retime(&ctx.into(), zone).await {
        Ok(_) => Ok(()),
        Err(crate::scheduling::recurring::RecurringError::Table(e)) => Err(e.into()),
        Err(e) => Err(DirectoryError::Table(TableError::Invalid(e.to_string()))),
    }
}
