//! Renders the table port's typed conditions and updates as DynamoDB
//! expressions, with every name and value behind a placeholder (so reserved
//! words such as `status` or `ttl` need no special care).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use super::attribute::to_attr;
use crate::ports::table::{Cond, PK, Update};

/// Placeholder → attribute name.
pub type Names = HashMap<String, String>;
/// Placeholder → value.
pub type Values = HashMap<String, AttributeValue>;

#[derive(Default)]
pub struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub fn name(&mut self, attr: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| *a == attr) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    pub fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn json(&mut self, value: &Value) -> String {
        self.value(to_attr(value))
    }

    pub fn cond(&mut self, cond: &Cond) -> String {
        let compare = |this: &mut Self, attr: &str, op: &str, v: &Value| {
            let (n, v) = (this.name(attr), this.json(v));
            format!("{n} {op} {v}")
        };
        match cond {
            Cond::Exists => format!("attribute_exists({})", self.name(PK)),
            Cond::NotExists => format!("attribute_not_exists({})", self.name(PK)),
            Cond::AttrExists(a) => format!("attribute_exists({})", self.name(a)),
            Cond::AttrNotExists(a) => format!("attribute_not_exists({})", self.name(a)),
            Cond::Eq(a, v) => compare(self, a, "=", v),
            Cond::Ne(a, v) => compare(self, a, "<>", v),
            Cond::Lt(a, v) => compare(self, a, "<", v),
            Cond::Le(a, v) => compare(self, a, "<=", v),
            Cond::Gt(a, v) => compare(self, a, ">", v),
            Cond::Ge(a, v) => compare(self, a, ">=", v),
            Cond::In(a, vs) => {
                let n = self.name(a);
                let vs: Vec<String> = vs.iter().map(|v| self.json(v)).collect();
                format!("{n} IN ({})", vs.join(", "))
            }
            Cond::And(cs) => self.join(cs, " AND ", "attribute_exists"),
            Cond::Or(cs) => self.join(cs, " OR ", "attribute_not_exists"),
            Cond::Not(c) => format!("NOT ({})", self.cond(c)),
        }
    }

    /// An empty AND is true and an empty OR false; DynamoDB has no literals,
    /// so they are spelled with the always-present / never-present key.
    fn join(&mut self, cs: &[Cond], op: &str, empty: &str) -> String {
        if cs.is_empty() {
            return format!("{empty}({})", self.name(PK));
        }
        let parts: Vec<String> = cs.iter().map(|c| format!("({})", self.cond(c))).collect();
        parts.join(op)
    }

    pub fn update(&mut self, update: &Update) -> String {
        let mut sets: Vec<String> = Vec::new();
        for (a, v) in &update.set {
            sets.push(format!("{} = {}", self.name(a), self.json(v)));
        }
        for (a, v) in &update.set_if_absent {
            let n = self.name(a);
            sets.push(format!("{n} = if_not_exists({n}, {})", self.json(v)));
        }
        let mut clauses = Vec::new();
        if !sets.is_empty() {
            clauses.push(format!("SET {}", sets.join(", ")));
        }
        if !update.add.is_empty() {
            let adds: Vec<String> = update
                .add
                .iter()
                .map(|(a, by)| {
                    format!(
                        "{} {}",
                        self.name(a),
                        self.value(AttributeValue::N(by.to_string()))
                    )
                })
                .collect();
            clauses.push(format!("ADD {}", adds.join(", ")));
        }
        if !update.remove.is_empty() {
            let removes: Vec<String> = update.remove.iter().map(|a| self.name(a)).collect();
            clauses.push(format!("REMOVE {}", removes.join(", ")));
        }
        clauses.join(" ")
    }

    /// Names and values for the request; `None` when empty, as DynamoDB
    /// rejects empty maps.
    pub fn into_parts(self) -> (Option<Names>, Option<Values>) {
        let names = (!self.names.is_empty()).then_some(self.names);
        let values = (!self.values.is_empty()).then_some(self.values);
        (names, values)
    }
}
