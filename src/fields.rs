//! What was wrong with each field of a form or a JSON body: one message per field name, shown
//! next to its field on a page and under `fields` in an API error. The buyer's details and the
//! organizer's forms report through this one type.

use std::collections::BTreeMap;

/// Messages by field name; the first message given for a field is the one kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<&'static str, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn one(field: &'static str, message: impl Into<String>) -> Self {
        let mut e = FieldErrors::default();
        e.add(field, message);
        e
    }

    /// `Ok(v)` when no field failed.
    pub fn into_result<T>(self, v: impl FnOnce() -> T) -> Result<T, FieldErrors> {
        if self.is_empty() { Ok(v()) } else { Err(self) }
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(field, msg)| format!("{field}: {msg}")).collect();
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_message_of_a_field_is_kept() {
        let mut e = FieldErrors::one("name", "Please enter your name.");
        e.add("name", "Another message.");
        e.add("age", "Too old.");
        assert_eq!(e.get("name"), Some("Please enter your name."));
        assert_eq!(e.to_string(), "age: Too old.; name: Please enter your name.");
        assert!(FieldErrors::default().into_result(|| 1).is_ok());
        assert!(e.into_result(|| 1).is_err());
    }
}
