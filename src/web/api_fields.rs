//! Field types of the JSON APIs that read a value loosely, so the handler answers a missing or
//! wrong value with its own 422 naming the field, while the OpenAPI document declares the
//! field exactly (required, one of a few names), so that a client and a fuzzer know what
//! is accepted.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::ops::Deref;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;

use crate::sale::{Gender, SaleState};

/// A field the document marks required; a request without it is still read (as `None`) and
/// refused by the handler with a 422 naming the field. Reads and validates like `Option<T>`.
#[derive(Debug, Default)]
pub struct Required<T>(pub Option<T>);

impl<T> Deref for Required<T> {
    type Target = Option<T>;

    fn deref(&self) -> &Option<T> {
        &self.0
    }
}

impl<T: Type> Type for Required<T> {
    const IS_REQUIRED: bool = true;

    type RawValueType = T::RawValueType;

    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_ref().and_then(Type::as_raw_value)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        match &self.0 {
            Some(value) => value.raw_element_iter(),
            None => Box::new(std::iter::empty()),
        }
    }
}

impl<T: ParseFromJSON> ParseFromJSON for Required<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::Null => Ok(Required(None)),
            value => Ok(Required(Some(
                T::parse_from_json(Some(value)).map_err(ParseError::propagate)?,
            ))),
        }
    }
}

impl<T: ToJSON> ToJSON for Required<T> {
    fn to_json(&self) -> Option<Value> {
        self.0.as_ref().and_then(ToJSON::to_json)
    }
}

/// The names a [`OneOf`] field declares.
pub trait Names: Send + Sync {
    /// The name of the schema in the document.
    const SCHEMA: &'static str;
    fn all() -> Vec<&'static str>;
}

/// A string declared as one of a few names; any other string reaches the handler, which
/// refuses it with a 422 naming the field.
#[derive(Debug)]
pub struct OneOf<N>(pub String, PhantomData<N>);

impl<N> Deref for OneOf<N> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<N: Names> Type for OneOf<N> {
    const IS_REQUIRED: bool = true;

    type RawValueType = String;

    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        N::SCHEMA.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            enum_items: N::all().into_iter().map(Value::from).collect(),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl<N: Names> ParseFromJSON for OneOf<N> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(s) => Ok(OneOf(s, PhantomData)),
            Value::Null => Ok(OneOf(String::new(), PhantomData)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl<N: Names> ToJSON for OneOf<N> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// A sale's state as the organizer API takes it.
pub struct SaleStates;

impl Names for SaleStates {
    const SCHEMA: &'static str = "SaleStateName";
    fn all() -> Vec<&'static str> {
        [SaleState::Open, SaleState::Paused, SaleState::Closed]
            .iter()
            .map(|s| s.as_str())
            .collect()
    }
}

/// A buyer's gender as the buyer API takes it.
pub struct Genders;

impl Names for Genders {
    const SCHEMA: &'static str = "Gender";
    fn all() -> Vec<&'static str> {
        Gender::ALL.iter().map(|g| g.as_str()).collect()
    }
}

/// A whole number from `MIN` to `MAX`, declared so (and required, unless in an `Option`); any
/// JSON value is read, for the handler to refuse with its own 422 naming the field.
#[derive(Debug)]
pub struct WholeNumber<const MIN: i64, const MAX: i64>(pub Value);

impl<const MIN: i64, const MAX: i64> WholeNumber<MIN, MAX> {
    /// The number, when the value is a whole number at all; its bounds are the handler's to check.
    pub fn value(&self) -> Option<i64> {
        self.0.as_i64()
    }
}

impl<const MIN: i64, const MAX: i64> Type for WholeNumber<MIN, MAX> {
    const IS_REQUIRED: bool = true;

    type RawValueType = Value;

    type RawElementValueType = Value;

    fn name() -> Cow<'static, str> {
        format!("integer_{MIN}_{MAX}").into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            minimum: Some(MIN as f64),
            maximum: Some(MAX as f64),
            ..MetaSchema::new_with_format("integer", "int64")
        }))
    }

    fn as_raw_value(&self) -> Option<&Value> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl<const MIN: i64, const MAX: i64> ParseFromJSON for WholeNumber<MIN, MAX> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Ok(WholeNumber(value.unwrap_or_default()))
    }
}

impl<const MIN: i64, const MAX: i64> ToJSON for WholeNumber<MIN, MAX> {
    fn to_json(&self) -> Option<Value> {
        Some(self.0.clone())
    }
}

/// What a [`Text`] field declares: its longest length and a pattern, as the document says them.
/// The handler enforces the rule itself (a 422 naming the field); the declaration tells the
/// client and the fuzzer what it will accept.
pub trait TextRule: Send + Sync {
    /// The name of the schema in the document.
    const SCHEMA: &'static str;
    const MAX_LENGTH: usize;
    const PATTERN: Option<&'static str>;
}

/// Plain text: not blank, no control characters but tab and line breaks.
pub const PLAIN_TEXT: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";

/// Plain text that may be left blank (an optional field such as the venue).
pub const OPTIONAL_PLAIN_TEXT: &str = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$";

/// A JSON string, and only a string (a number is not read as its digits, as the document
/// says), declared with the bounds of `R`.
#[derive(Debug)]
pub struct Text<R>(pub String, PhantomData<R>);

impl<R> Deref for Text<R> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<R: TextRule> Type for Text<R> {
    const IS_REQUIRED: bool = true;

    type RawValueType = String;

    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        R::SCHEMA.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            max_length: Some(R::MAX_LENGTH),
            pattern: R::PATTERN.map(String::from),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl<R: TextRule> ParseFromJSON for Text<R> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(s) => Ok(Text(s, PhantomData)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl<R: TextRule> ToJSON for Text<R> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// A field that cannot change once set: declared read-only, so the document says it is not
/// sent; one that is sent anyway reaches the handler, which refuses it with a 422 naming it.
#[derive(Debug, Default)]
pub struct Fixed(pub Value);

impl Type for Fixed {
    const IS_REQUIRED: bool = true;

    type RawValueType = Value;

    type RawElementValueType = Value;

    fn name() -> Cow<'static, str> {
        "fixed".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            read_only: true,
            ..MetaSchema::ANY
        }))
    }

    fn as_raw_value(&self) -> Option<&Value> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ParseFromJSON for Fixed {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Ok(Fixed(value.unwrap_or_default()))
    }
}

impl ToJSON for Fixed {
    fn to_json(&self) -> Option<Value> {
        Some(self.0.clone())
    }
}
