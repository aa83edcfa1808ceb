//! Strict reading of a script's reply, field by field, as a command's frame is parsed: each
//! field is asked for by name and type, and a reply that is short, of the wrong type, carries
//! an unknown tag or has fields left over is an error naming the script and the field.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use fred::prelude::*;

use super::ScriptName;
use crate::sale::{ReservationState, SaleError};

/// A script's reply being read, front to back.
pub(crate) struct Reply {
    script: ScriptName,
    values: std::collections::VecDeque<Value>,
}

/// A reply of the wrong shape: which script, which field, what was wrong.
#[derive(Debug, PartialEq)]
pub(crate) struct ReplyError {
    pub script: ScriptName,
    pub field: &'static str,
    pub problem: Problem,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Problem {
    /// The reply ended before this field.
    Missing,
    /// The field is there with another type.
    WrongType { found: String },
    /// A tag (the first field) this code does not know.
    UnknownTag(String),
    /// A number outside what the field may hold.
    OutOfRange(i64),
    /// Fields after the last one this reply has.
    LeftOver(usize),
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: ", self.field)?;
        match &self.problem {
            Problem::Missing => write!(f, "missing"),
            Problem::WrongType { found } => write!(f, "expected another type, found {found}"),
            Problem::UnknownTag(tag) => write!(f, "unknown tag {tag:?}"),
            Problem::OutOfRange(n) => write!(f, "{n} is out of range"),
            Problem::LeftOver(n) => write!(f, "{n} more field(s) than expected"),
        }
    }
}

impl From<ReplyError> for SaleError {
    fn from(e: ReplyError) -> Self {
        SaleError::Protocol {
            script: e.script.as_str(),
            reply: e.to_string(),
        }
    }
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Bytes(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

impl Reply {
    /// A script's answer: an array is read field by field, anything else is a single field.
    pub fn new(script: ScriptName, value: Value) -> Self {
        let values = match value {
            Value::Array(values) => values.into(),
            other => [other].into(),
        };
        Reply { script, values }
    }

    /// The first field when it is text (the tag of a tagged reply), without taking it.
    pub fn tag(&self) -> Option<&str> {
        self.values.front().and_then(text)
    }

    /// True when the script said that Redis has lost the sale (`{ '!missing' }`).
    pub fn is_missing(&self) -> bool {
        self.tag() == Some("!missing")
    }

    pub fn error(&self, field: &'static str, problem: Problem) -> ReplyError {
        ReplyError {
            script: self.script,
            field,
            problem,
        }
    }

    /// The tag was read and no reply of this script carries it.
    pub fn unknown_tag(&self, field: &'static str, tag: &str) -> ReplyError {
        self.error(field, Problem::UnknownTag(tag.to_string()))
    }

    fn next(&mut self, field: &'static str) -> Result<Value, ReplyError> {
        self.values
            .pop_front()
            .ok_or_else(|| self.error(field, Problem::Missing))
    }

    fn wrong_type(&self, field: &'static str, found: &Value) -> ReplyError {
        self.error(
            field,
            Problem::WrongType {
                found: found.kind().to_string(),
            },
        )
    }

    pub fn string(&mut self, field: &'static str) -> Result<String, ReplyError> {
        let value = self.next(field)?;
        match text(&value) {
            Some(s) => Ok(s.to_string()),
            None => Err(self.wrong_type(field, &value)),
        }
    }

    /// Raw bytes (a string value that need not be text; an empty one for a missing key).
    pub fn bytes(&mut self, field: &'static str) -> Result<Vec<u8>, ReplyError> {
        match self.next(field)? {
            Value::Bytes(b) => Ok(b.to_vec()),
            Value::String(s) => Ok(s.as_bytes().to_vec()),
            other => Err(self.wrong_type(field, &other)),
        }
    }

    pub fn int(&mut self, field: &'static str) -> Result<i64, ReplyError> {
        match self.next(field)? {
            Value::Integer(n) => Ok(n),
            other => Err(self.wrong_type(field, &other)),
        }
    }

    /// An integer that must fit `T` (a count, a quantity).
    pub fn int_as<T: TryFrom<i64>>(&mut self, field: &'static str) -> Result<T, ReplyError> {
        let n = self.int(field)?;
        T::try_from(n).map_err(|_| self.error(field, Problem::OutOfRange(n)))
    }

    /// `1` or `0`.
    pub fn flag(&mut self, field: &'static str) -> Result<bool, ReplyError> {
        match self.int(field)? {
            0 => Ok(false),
            1 => Ok(true),
            n => Err(self.error(field, Problem::OutOfRange(n))),
        }
    }

    /// Milliseconds of Redis's clock.
    pub fn time(&mut self, field: &'static str) -> Result<DateTime<Utc>, ReplyError> {
        let ms = self.int(field)?;
        Utc.timestamp_millis_opt(ms)
            .single()
            .ok_or_else(|| self.error(field, Problem::OutOfRange(ms)))
    }

    /// Milliseconds of Redis's clock, or 0 for none.
    pub fn optional_time(&mut self, field: &'static str) -> Result<Option<DateTime<Utc>>, ReplyError> {
        if self.values.front() == Some(&Value::Integer(0)) {
            self.values.pop_front();
            return Ok(None);
        }
        self.time(field).map(Some)
    }

    /// A reservation's state by the name the scripts give it.
    pub fn state(&mut self, field: &'static str) -> Result<ReservationState, ReplyError> {
        let name = self.string(field)?;
        ReservationState::from_script(&name).ok_or_else(|| self.unknown_tag(field, &name))
    }

    /// The reply must end here.
    pub fn finish(self) -> Result<(), ReplyError> {
        match self.values.len() {
            0 => Ok(()),
            n => Err(self.error("(end)", Problem::LeftOver(n))),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A reply as Redis would send it: numbers as integers, text as strings.
    pub(crate) fn reply(script: ScriptName, fields: &[Value]) -> Reply {
        Reply::new(script, Value::Array(fields.to_vec()))
    }

    #[test]
    fn fields_are_read_by_name_and_type() {
        let mut r = reply(ScriptName::Peek, &["open".into(), 3.into(), 1.into()]);
        assert_eq!(r.string("state").unwrap(), "open");
        assert_eq!(r.int_as::<u8>("qty").unwrap(), 3);
        assert!(r.flag("created").unwrap());
        r.finish().unwrap();
    }

    #[test]
    fn a_short_reply_names_the_missing_field() {
        let mut r = reply(ScriptName::SyncRead, &[1.into()]);
        r.int("xact_mark").unwrap();
        let e = r.int("now_ms").unwrap_err();
        assert_eq!(
            (e.script, e.field, e.problem),
            (ScriptName::SyncRead, "now_ms", Problem::Missing)
        );
    }

    #[test]
    fn a_wrong_type_is_an_error_not_a_zero() {
        let e = reply(ScriptName::Peek, &["12".into()]).int("capacity").unwrap_err();
        assert_eq!(e.field, "capacity");
        assert!(matches!(e.problem, Problem::WrongType { .. }), "{e}");
        let e = reply(ScriptName::Peek, &[Value::Null]).string("state").unwrap_err();
        assert!(matches!(e.problem, Problem::WrongType { .. }), "{e}");
    }

    #[test]
    fn numbers_out_of_their_range_and_left_over_fields_are_errors() {
        let e = reply(ScriptName::Join, &[300.into()]).int_as::<u8>("qty").unwrap_err();
        assert_eq!(e.problem, Problem::OutOfRange(300));
        let e = reply(ScriptName::Join, &[2.into()]).flag("created").unwrap_err();
        assert_eq!(e.problem, Problem::OutOfRange(2));
        let e = reply(ScriptName::Join, &[1.into()]).finish().unwrap_err();
        assert_eq!(e.problem, Problem::LeftOver(1));
    }

    #[test]
    fn an_unknown_state_is_an_unknown_tag() {
        let e = reply(ScriptName::Status, &["dancing".into()])
            .state("state")
            .unwrap_err();
        assert_eq!(e.problem, Problem::UnknownTag("dancing".into()));
        let message = SaleError::from(e).to_string();
        assert!(message.contains("status") && message.contains("`state`"), "{message}");
    }
}
