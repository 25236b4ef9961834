//! The analytics page's figures: by day, by branch and in all, read from the
//! counters the pipeline keeps (`Figures` per day and per branch, the
//! church's counters), never from recipients. Every rate is
//! [`delivery_rate`], the one the history and a message's detail show.
//!
//! Every figure counts texts to recipients, never broadcasts: the page shows
//! "Total Messages", "Delivered", "Failed" and "Pending" side by side, and
//! its charts "Messages Sent" beside "Delivered" and "Failed", so a total
//! that counted broadcasts read "2 messages, 4 delivered". A text counts
//! once it went out or was refused ([`Figures::texts`]), so delivered +
//! failed + pending = total; opted-out and cancelled recipients were never
//! texted and count in none.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::entities::Figures;
use super::rate::delivery_rate;
use crate::directory::branches;
use crate::directory::model::{ChurchCounters, Counter};
use crate::domain::{BranchId, ChurchId};
use crate::keys;
use crate::ports::table::{Key, Query, SortCond, Table, TableError};
use crate::store::Entities;

/// One day's figures with the day they are (their key names it).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Day {
    #[serde(skip)]
    key: Key,
    #[serde(flatten)]
    figures: Figures,
}

crate::store::keyed_by_its_key!(Day);

impl Day {
    fn date(&self) -> Option<&str> {
        self.key.sk.strip_prefix(keys::DAY_PREFIX)
    }
}

/// One day of the trend (fields alphabetical: the answers are bare JSON in
/// the order they always had).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayRow {
    /// Texts that went out (or were refused) that day.
    pub count: i64,
    pub date: String,
    pub delivered: i64,
    pub failed: i64,
}

/// `GET /api/analytics/messages`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageFigures {
    pub by_day: Vec<DayRow>,
    pub delivered_count: i64,
    pub delivery_rate: f64,
    pub failed_count: i64,
    /// Taken by the carrier, with no final receipt yet.
    pub pending_count: i64,
    /// Texts: delivered + failed + pending.
    pub total_messages: i64,
}

/// The figures of the `days` days ending `today` (UTC), oldest first; a day
/// without figures is all zeros.
pub async fn messages(
    table: &dyn Table,
    church: ChurchId,
    today: NaiveDate,
    days: i64,
) -> Result<MessageFigures, TableError> {
    let first = today - Duration::days(days - 1);
    let query = Query::partition(keys::church(church)).sort(SortCond::Between(
        keys::day(church, &first.to_string()).sk,
        keys::day(church, &today.to_string()).sk,
    ));
    let found = table.find_all::<Day>(query).await?;
    Ok(trend(&found, first, days))
}

fn trend(found: &[Day], first: NaiveDate, days: i64) -> MessageFigures {
    let mut by_day = Vec::with_capacity(days.max(0) as usize);
    let mut total = Figures::default();
    for offset in 0..days {
        let date = (first + Duration::days(offset)).to_string();
        let day = found
            .iter()
            .find(|d| d.date() == Some(date.as_str()))
            .map(|d| d.figures)
            .unwrap_or_default();
        total = total.plus(day);
        by_day.push(DayRow {
            count: day.texts(),
            date,
            delivered: day.delivered,
            failed: day.failed,
        });
    }
    MessageFigures {
        by_day,
        delivered_count: total.delivered,
        delivery_rate: delivery_rate(total.delivered, total.failed),
        failed_count: total.failed,
        pending_count: total.pending(),
        total_messages: total.texts(),
    }
}

/// One branch of `GET /api/analytics/branches` (fields alphabetical).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BranchRow {
    pub delivery_rate: f64,
    pub group_count: i64,
    pub id: BranchId,
    pub member_count: i64,
    /// Texts to the branch's members (as [`Figures::texts`]).
    pub message_count: i64,
    pub name: String,
}

/// Every branch with its delivery figures.
pub async fn branches(table: &dyn Table, church: ChurchId) -> Result<Vec<BranchRow>, TableError> {
    let branches = branches::of_church(table, church).await?;
    let stat_keys: Vec<Key> = branches
        .iter()
        .map(|b| keys::branch_stats(church, b.id))
        .collect();
    let figures = table.load_many::<Figures>(&stat_keys).await?;
    Ok(branches
        .into_iter()
        .zip(figures)
        .map(|(b, f)| {
            let f = f.unwrap_or_default();
            BranchRow {
                delivery_rate: delivery_rate(f.delivered, f.failed),
                group_count: b.group_count,
                id: b.id,
                member_count: b.member_count,
                message_count: f.texts(),
                name: b.name,
            }
        })
        .collect())
}

/// `GET /api/analytics/summary` (fields alphabetical).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The rate over every day the church has figures for.
    pub average_delivery_rate: f64,
    pub total_branches: i64,
    pub total_groups: i64,
    pub total_members: i64,
    /// Texts, as `GET /api/analytics/messages` counts them, over every day.
    pub total_messages: i64,
}

pub async fn summary(table: &dyn Table, church: ChurchId) -> Result<Summary, TableError> {
    let counters = table
        .load::<ChurchCounters>(&ChurchCounters::key_of(church))
        .await?
        .unwrap_or_default();
    let query =
        Query::partition(keys::church(church)).sort(SortCond::BeginsWith(keys::DAY_PREFIX.into()));
    let days = table.find_all::<Day>(query).await?;
    let all = days
        .iter()
        .fold(Figures::default(), |all, d| all.plus(d.figures));
    Ok(Summary {
        average_delivery_rate: delivery_rate(all.delivered, all.failed),
        total_branches: counters.get(Counter::Branches),
        total_groups: counters.get(Counter::Groups),
        total_members: counters.get(Counter::Members),
        total_messages: all.texts(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(church: ChurchId, date: &str, figures: Figures) -> Day {
        Day {
            key: keys::day(church, date),
            figures,
        }
    }

    #[test]
    fn the_trend_has_every_day_oldest_first_with_its_figures_summed() {
        let church = ChurchId::generate();
        let first = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let found = [
            day(
                church,
                "2026-11-25",
                Figures {
                    messages: 2,
                    sent: 19,
                    delivered: 18,
                    // One taken then failed, one refused.
                    failed: 2,
                    refused: 1,
                    opted_out: 1,
                    cancelled: 0,
                },
            ),
            day(
                church,
                "2026-11-23",
                Figures {
                    messages: 1,
                    sent: 2,
                    delivered: 1,
                    ..Figures::default()
                },
            ),
        ];
        let figures = trend(&found, first, 3);
        let dates: Vec<&str> = figures.by_day.iter().map(|d| d.date.as_str()).collect();
        assert_eq!(dates, ["2026-11-23", "2026-11-24", "2026-11-25"]);
        assert_eq!(figures.by_day[1].count, 0);
        assert_eq!(figures.by_day[2].count, 20, "19 sent, 1 refused");
        assert_eq!(figures.by_day[2].delivered, 18);
        // Texts, not broadcasts: delivered + failed + pending = total.
        assert_eq!(figures.total_messages, 22);
        assert_eq!(figures.delivered_count, 19);
        assert_eq!(figures.failed_count, 2);
        assert_eq!(
            figures.pending_count, 1,
            "one of 11-23's two has no receipt"
        );
        assert_eq!(
            figures.delivered_count + figures.failed_count + figures.pending_count,
            figures.total_messages
        );
        assert_eq!(figures.delivery_rate, delivery_rate(19, 2));
    }

    #[test]
    fn the_answers_keep_their_fields_in_their_order() {
        let figures = trend(&[], NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(), 1);
        assert_eq!(
            serde_json::to_string(&figures).unwrap(),
            r#"{"byDay":[{"count":0,"date":"2026-11-25","delivered":0,"failed":0}],"deliveredCount":0,"deliveryRate":0.0,"failedCount":0,"pendingCount":0,"totalMessages":0}"#
        );
    }
}
