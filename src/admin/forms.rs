//! What an organizer types in, parsed once into values that cannot be wrong. The portal's
//! forms and the JSON API differ only in how they write times and prices; both hand their
//! fields to the same checks here, so a rule holds alike on both paths.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

pub use crate::fields::FieldErrors;

/// A field as the edge read it: a value, missing, or present but unreadable (with why).
pub type Parsed<T> = Result<Option<T>, &'static str>;

pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 5000;
pub const MAX_VENUE: usize = 200;
/// Far above any hall; keeps sums and Redis counters well inside their integer types.
pub const MAX_CAPACITY: i64 = 1_000_000;
/// 10 million in major units.
pub const MAX_PRICE_MINOR: i64 = 1_000_000_000;
/// How far ahead an event may start or a sale open: a ticket shop sells seasons, not
/// centuries, and every time the shop computes from these (key expiries, listings) then stays
/// far from the calendar's end.
pub const MAX_LEAD: TimeDelta = TimeDelta::days(5 * 366);
/// How long one event may last: a festival or a season's run, not more.
pub const MAX_SPAN: TimeDelta = TimeDelta::days(366);

/// The one rule for every time an organizer gives: `t` comes at most `span` after `from`
/// (computed with checked arithmetic: no time is past a bound beyond the calendar's end).
fn within(t: DateTime<Utc>, from: DateTime<Utc>, span: TimeDelta) -> bool {
    from.checked_add_signed(span).is_none_or(|latest| t <= latest)
}

/// An email address as organizers sign in with it, by the one rule
/// ([`crate::email::normalize`]). Whether it receives mail is not this shop's business.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        crate::email::normalize(s)
            .map(Email)
            .ok_or("Enter an email address such as name@example.com.")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 10 to 128 characters. Long enough to resist guessing behind the rate
/// limit, short enough that hashing it costs nothing unusual.
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match s.chars().count() {
            0..=9 => Err("Use at least 10 characters."),
            10..=128 => Ok(NewPassword(s.to_string())),
            _ => Err("Use at most 128 characters."),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An event's title, description and venue: the part that may change after creation. The
/// venue may be left empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventText {
    pub title: String,
    pub description: String,
    pub venue: String,
}

impl EventText {
    pub fn parse(title: Option<&str>, description: Option<&str>, venue: Option<&str>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let title = title.map(str::trim).unwrap_or("");
        let description = description.map(str::trim).unwrap_or("");
        let venue = venue.map(str::trim).unwrap_or("");
        for (field, value) in [("title", title), ("description", description)] {
            if value.is_empty() {
                errors.add(field, "Required.");
            }
        }
        check_text(&mut errors, "title", title, MAX_TITLE);
        check_text(&mut errors, "description", description, MAX_DESCRIPTION);
        check_text(&mut errors, "venue", venue, MAX_VENUE);
        errors.into_result(|| EventText {
            title: title.to_string(),
            description: description.to_string(),
            venue: venue.to_string(),
        })
    }
}

/// The one rule for text an organizer types: at most `max` characters, no control characters
/// but line breaks and tabs.
fn check_text(errors: &mut FieldErrors, field: &'static str, value: &str, max: usize) {
    if value.chars().count() > max {
        errors.add(field, format!("At most {max} characters."));
    } else if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        // Postgres refuses a NUL in text; no other control character belongs in a title either.
        errors.add(field, "Only plain text, please: no control characters.");
    }
}

/// The fields of a new event, each already read from its form or JSON representation.
pub struct EventFields<'a> {
    pub title: Option<&'a str>,
    pub description: Option<&'a str>,
    /// Optional: empty when left out.
    pub venue: Option<&'a str>,
    pub starts_at: Parsed<DateTime<Utc>>,
    pub ends_at: Parsed<DateTime<Utc>>,
    pub capacity: Parsed<i64>,
    pub price_minor: Parsed<i64>,
    pub currency: Option<&'a str>,
}

/// A new event that keeps every rule: all fields given, start not in the past nor more than
/// `MAX_LEAD` ahead, end after start and within `MAX_SPAN` of it, capacity at least 1, price not negative, a three-letter currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventDraft {
    pub text: EventText,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i32,
    pub price_minor: i64,
    pub currency: String,
}

impl EventDraft {
    pub fn parse(f: EventFields<'_>, now: DateTime<Utc>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let text = EventText::parse(f.title, f.description, f.venue)
            .map_err(|e| errors = e)
            .ok();
        let starts_at = required(&mut errors, "starts_at", f.starts_at);
        let ends_at = required(&mut errors, "ends_at", f.ends_at);
        if let Some(start) = starts_at
            && start < now
        {
            errors.add("starts_at", "The start cannot be in the past.");
        }
        if let Some(start) = starts_at
            && !within(start, now, MAX_LEAD)
        {
            errors.add("starts_at", "The start can be at most 5 years ahead.");
        }
        if let (Some(start), Some(end)) = (starts_at, ends_at) {
            if end <= start {
                errors.add("ends_at", "The end must come after the start.");
            } else if !within(end, start, MAX_SPAN) {
                errors.add("ends_at", "An event lasts at most a year.");
            }
        }
        let capacity = required(&mut errors, "capacity", f.capacity);
        if let Some(c) = capacity
            && !(1..=MAX_CAPACITY).contains(&c)
        {
            errors.add("capacity", format!("Between 1 and {MAX_CAPACITY}."));
        }
        let price = required(&mut errors, "price", f.price_minor);
        if let Some(p) = price {
            if p < 0 {
                errors.add("price", "The price cannot be negative.");
            } else if p > MAX_PRICE_MINOR {
                errors.add("price", "That price is too high.");
            }
        }
        let currency = Currency::parse(f.currency).map_err(|m| errors.add("currency", m)).ok();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(EventDraft {
            text: text.expect("checked"),
            starts_at: starts_at.expect("checked"),
            ends_at: ends_at.expect("checked"),
            capacity: capacity.expect("checked") as i32,
            price_minor: price.expect("checked"),
            currency: currency.expect("checked").0,
        })
    }
}

fn required<T>(errors: &mut FieldErrors, field: &'static str, v: Parsed<T>) -> Option<T> {
    match v {
        Ok(Some(v)) => Some(v),
        Ok(None) => {
            errors.add(field, "Required.");
            None
        }
        Err(m) => {
            errors.add(field, m);
            None
        }
    }
}

/// Three uppercase letters; EUR when left out.
pub struct Currency(pub String);

impl Currency {
    pub fn parse(s: Option<&str>) -> Result<Self, &'static str> {
        match s.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(Currency("EUR".into())),
            Some(s) if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) => Ok(Currency(s.into())),
            Some(_) => Err("Three capital letters, such as EUR."),
        }
    }
}

/// The fields of a new ticket sale; what is left out takes its default from the event.
pub struct SaleFields {
    pub capacity: Parsed<i64>,
    pub opens_at: Parsed<DateTime<Utc>>,
    pub hold_secs: Parsed<i64>,
    pub max_active: Parsed<i64>,
    pub prequeue_secs: Parsed<i64>,
    /// One pre-queue place per verified email (a checkbox, or a JSON boolean; off when left out).
    pub one_place_per_email: bool,
}

/// A new sale of an event: its own capacity (the event's by default, never more), opening
/// time (now by default), hold time (the shop's default), buyers at checkout at once (0:
/// no limit), pre-queue window (30 minutes before the opening by default; 0: none) and
/// whether each pre-queue place needs an email confirmed by a mailed link (off by default;
/// only where the shop sends mail). Its price is copied from the event by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaleDraft {
    pub capacity: i32,
    pub opens_at: DateTime<Utc>,
    pub hold_secs: i32,
    pub max_active: i32,
    pub prequeue_secs: i32,
    pub one_place_per_email: bool,
}

pub const MAX_HOLD_SECS: i64 = 3600;
/// The longest pre-queue window, a day; the database holds the same bound.
pub const MAX_PREQUEUE_SECS: i64 = 86_400;
/// The pre-queue window of a sale that does not say.
pub const DEFAULT_PREQUEUE_SECS: i64 = 1800;

impl SaleDraft {
    pub fn parse(
        f: SaleFields,
        event_capacity: i32,
        default_hold_secs: u32,
        sends_mail: bool,
        now: DateTime<Utc>,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::default();
        let capacity = optional(&mut errors, "capacity", f.capacity).unwrap_or(i64::from(event_capacity));
        if !(1..=i64::from(event_capacity)).contains(&capacity) {
            errors.add(
                "capacity",
                format!("Between 1 and the event's capacity, {event_capacity}."),
            );
        }
        let opens_at = optional(&mut errors, "opens_at", f.opens_at).unwrap_or(now);
        if !within(opens_at, now, MAX_LEAD) {
            errors.add("opens_at", "A sale opens at most 5 years ahead.");
        }
        let hold = optional(&mut errors, "hold_secs", f.hold_secs).unwrap_or(i64::from(default_hold_secs));
        if !(1..=MAX_HOLD_SECS).contains(&hold) {
            errors.add("hold_secs", "Between 1 second and 60 minutes.");
        }
        let max_active = optional(&mut errors, "max_active", f.max_active).unwrap_or(0);
        if !(0..=MAX_CAPACITY).contains(&max_active) {
            errors.add("max_active", "0 (no limit) or more.");
        }
        let prequeue = optional(&mut errors, "prequeue_secs", f.prequeue_secs).unwrap_or(DEFAULT_PREQUEUE_SECS);
        if !(0..=MAX_PREQUEUE_SECS).contains(&prequeue) {
            errors.add("prequeue_secs", "0 (no pre-queue) up to a day.");
        }
        if f.one_place_per_email && !sends_mail {
            // The place comes with a mailed link: a shop that cannot mail would hold every place.
            errors.add(
                "one_place_per_email",
                "This shop sends no mail (no SMTP server is configured), so it cannot confirm emails.",
            );
        }
        errors.into_result(|| SaleDraft {
            capacity: capacity as i32,
            opens_at,
            hold_secs: hold as i32,
            max_active: max_active as i32,
            prequeue_secs: prequeue as i32,
            one_place_per_email: f.one_place_per_email,
        })
    }
}

fn optional<T>(errors: &mut FieldErrors, field: &'static str, v: Parsed<T>) -> Option<T> {
    v.map_err(|m| errors.add(field, m)).ok().flatten()
}

// Readers of the two representations.

fn blank(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// An HTML `datetime-local` value, read as UTC (the form says so).
pub fn form_time(s: Option<&str>) -> Parsed<DateTime<Utc>> {
    let Some(s) = blank(s) else { return Ok(None) };
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| Some(t.and_utc()))
        .ok_or("A date and time such as 2027-05-01T20:00.")
}

/// An RFC 3339 time, as the API takes them.
pub fn api_time(s: Option<&str>) -> Parsed<DateTime<Utc>> {
    let Some(s) = blank(s) else { return Ok(None) };
    DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| "An RFC 3339 time such as 2027-05-01T20:00:00Z.")
}

/// The message of a field that is not a whole number at all.
pub const NOT_A_WHOLE_NUMBER: &str = "A whole number.";

/// A whole number typed into a form.
pub fn form_int(s: Option<&str>) -> Parsed<i64> {
    let Some(s) = blank(s) else { return Ok(None) };
    s.parse().map(Some).map_err(|_| NOT_A_WHOLE_NUMBER)
}

/// A price typed as a decimal with at most two places (`25`, `25.5`, `25.00`), in minor units.
pub fn form_price(s: Option<&str>) -> Parsed<i64> {
    let Some(s) = blank(s) else { return Ok(None) };
    const BAD: &str = "An amount such as 25.00.";
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 12 || frac.len() > 2 || !all_digits(whole) || !all_digits(frac) {
        return Err(BAD);
    }
    let whole: i64 = whole.parse().map_err(|_| BAD)?;
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| BAD)?;
    let minor = whole * 100 + frac;
    Ok(Some(if negative { -minor } else { minor }))
}

pub use crate::web::money::decimal as show_price;

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2027-01-01T12:00:00Z".parse().unwrap()
    }

    fn fields<'a>() -> EventFields<'a> {
        EventFields {
            title: Some("Tour"),
            description: Some("One night."),
            venue: None,
            starts_at: Ok(Some(now() + Duration::days(1))),
            ends_at: Ok(Some(now() + Duration::days(1) + Duration::hours(2))),
            capacity: Ok(Some(100)),
            price_minor: Ok(Some(2500)),
            currency: None,
        }
    }

    fn err(f: EventFields<'_>, field: &str) -> String {
        let e = EventDraft::parse(f, now()).expect_err("must be refused");
        assert_eq!(e.0.len(), 1, "{e:?}");
        e.get(field)
            .unwrap_or_else(|| panic!("no error on {field}: {e:?}"))
            .to_string()
    }

    #[test]
    fn a_good_event_passes_with_eur_by_default() {
        let d = EventDraft::parse(fields(), now()).unwrap();
        assert_eq!((d.capacity, d.price_minor, d.currency.as_str()), (100, 2500, "EUR"));
    }

    #[test]
    fn every_event_field_is_required() {
        assert_eq!(
            err(
                EventFields {
                    title: Some("  "),
                    ..fields()
                },
                "title"
            ),
            "Required."
        );
        assert_eq!(
            err(
                EventFields {
                    description: None,
                    ..fields()
                },
                "description"
            ),
            "Required."
        );
        assert_eq!(
            err(
                EventFields {
                    starts_at: Ok(None),
                    ..fields()
                },
                "starts_at"
            ),
            "Required."
        );
        assert_eq!(
            err(
                EventFields {
                    ends_at: Ok(None),
                    ..fields()
                },
                "ends_at"
            ),
            "Required."
        );
        assert_eq!(
            err(
                EventFields {
                    capacity: Ok(None),
                    ..fields()
                },
                "capacity"
            ),
            "Required."
        );
        assert_eq!(
            err(
                EventFields {
                    price_minor: Ok(None),
                    ..fields()
                },
                "price"
            ),
            "Required."
        );
    }

    #[test]
    fn event_rules() {
        let past = EventFields {
            starts_at: Ok(Some(now() - Duration::minutes(1))),
            ..fields()
        };
        assert!(err(past, "starts_at").contains("past"));
        let same = EventFields {
            ends_at: Ok(Some(now() + Duration::days(1))),
            ..fields()
        };
        assert!(err(same, "ends_at").contains("after"));
        let far = EventFields {
            starts_at: Ok(Some(now() + MAX_LEAD + Duration::minutes(1))),
            ends_at: Ok(Some(now() + MAX_LEAD + Duration::hours(2))),
            ..fields()
        };
        assert!(err(far, "starts_at").contains("5 years"));
        let long = EventFields {
            ends_at: Ok(Some(now() + Duration::days(1) + MAX_SPAN + Duration::minutes(1))),
            ..fields()
        };
        assert!(err(long, "ends_at").contains("a year"));
        let calendar_end = EventFields {
            starts_at: Ok(Some(DateTime::<Utc>::MAX_UTC - Duration::days(1))),
            ends_at: Ok(Some(DateTime::<Utc>::MAX_UTC)),
            ..fields()
        };
        assert!(err(calendar_end, "starts_at").contains("5 years"));
        assert!(
            err(
                EventFields {
                    capacity: Ok(Some(0)),
                    ..fields()
                },
                "capacity"
            )
            .contains("Between")
        );
        assert!(
            err(
                EventFields {
                    price_minor: Ok(Some(-1)),
                    ..fields()
                },
                "price"
            )
            .contains("negative")
        );
        assert_eq!(
            EventDraft::parse(
                EventFields {
                    price_minor: Ok(Some(0)),
                    ..fields()
                },
                now()
            )
            .unwrap()
            .price_minor,
            0
        );
        assert!(
            err(
                EventFields {
                    currency: Some("eur"),
                    ..fields()
                },
                "currency"
            )
            .contains("capital")
        );
        assert!(
            err(
                EventFields {
                    title: Some(&"x".repeat(201)),
                    ..fields()
                },
                "title"
            )
            .contains("200")
        );
    }

    #[test]
    fn the_venue_is_optional_plain_and_short() {
        assert_eq!(EventDraft::parse(fields(), now()).unwrap().text.venue, "");
        let hall = EventFields {
            venue: Some(" Small Hall "),
            ..fields()
        };
        assert_eq!(EventDraft::parse(hall, now()).unwrap().text.venue, "Small Hall");
        let long = "v".repeat(MAX_VENUE + 1);
        assert!(
            err(
                EventFields {
                    venue: Some(&long),
                    ..fields()
                },
                "venue"
            )
            .contains("200")
        );
        assert!(
            err(
                EventFields {
                    venue: Some("Hall\u{0}"),
                    ..fields()
                },
                "venue"
            )
            .contains("control")
        );
    }

    #[test]
    fn several_errors_come_back_together() {
        let f = EventFields {
            title: None,
            capacity: Err("A whole number."),
            ..fields()
        };
        let e = EventDraft::parse(f, now()).unwrap_err();
        assert_eq!(e.get("title"), Some("Required."));
        assert_eq!(e.get("capacity"), Some("A whole number."));
    }

    #[test]
    fn form_values_parse() {
        assert_eq!(form_price(Some("25.00")), Ok(Some(2500)));
        assert_eq!(form_price(Some("25.5")), Ok(Some(2550)));
        assert_eq!(form_price(Some("7")), Ok(Some(700)));
        assert_eq!(form_price(Some("-1")), Ok(Some(-100)));
        assert_eq!(form_price(Some(" ")), Ok(None));
        for bad in ["1.234", "abc", "1,50", ".5", "1e3", "9999999999999"] {
            assert!(form_price(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(show_price(2550), "25.50");
        assert_eq!(show_price(5), "0.05");
        assert_eq!(
            form_time(Some("2027-05-01T20:00")),
            Ok(Some("2027-05-01T20:00:00Z".parse().unwrap()))
        );
        assert!(form_time(Some("tomorrow")).is_err());
        assert_eq!(
            api_time(Some("2027-05-01T22:00:00+02:00")),
            Ok(Some("2027-05-01T20:00:00Z".parse().unwrap()))
        );
        assert!(api_time(Some("2027-05-01 20:00")).is_err());
        assert_eq!(form_int(Some("12")), Ok(Some(12)));
        assert!(form_int(Some("1.5")).is_err());
    }

    #[test]
    fn sale_defaults_and_rules() {
        let none = || SaleFields {
            capacity: Ok(None),
            opens_at: Ok(None),
            hold_secs: Ok(None),
            max_active: Ok(None),
            prequeue_secs: Ok(None),
            one_place_per_email: false,
        };
        let d = SaleDraft::parse(none(), 50, 480, false, now()).unwrap();
        assert_eq!((d.capacity, d.opens_at, d.hold_secs, d.max_active), (50, now(), 480, 0));
        let e = |f: SaleFields| SaleDraft::parse(f, 50, 480, false, now()).unwrap_err();
        assert!(
            e(SaleFields {
                one_place_per_email: true,
                ..none()
            })
            .get("one_place_per_email")
            .is_some()
        );
        let with_mail = SaleFields {
            one_place_per_email: true,
            ..none()
        };
        assert!(
            SaleDraft::parse(with_mail, 50, 480, true, now())
                .unwrap()
                .one_place_per_email
        );
        assert!(
            e(SaleFields {
                capacity: Ok(Some(0)),
                ..none()
            })
            .get("capacity")
            .is_some()
        );
        assert!(
            e(SaleFields {
                capacity: Ok(Some(51)),
                ..none()
            })
            .get("capacity")
            .is_some()
        );
        assert!(
            e(SaleFields {
                opens_at: Ok(Some(now() + MAX_LEAD + Duration::minutes(1))),
                ..none()
            })
            .get("opens_at")
            .is_some()
        );
        assert!(
            e(SaleFields {
                hold_secs: Ok(Some(0)),
                ..none()
            })
            .get("hold_secs")
            .is_some()
        );
        assert!(
            e(SaleFields {
                hold_secs: Ok(Some(3601)),
                ..none()
            })
            .get("hold_secs")
            .is_some()
        );
        assert!(
            e(SaleFields {
                max_active: Ok(Some(-1)),
                ..none()
            })
            .get("max_active")
            .is_some()
        );
        for bad in [-1, MAX_PREQUEUE_SECS + 1] {
            assert!(
                e(SaleFields {
                    prequeue_secs: Ok(Some(bad)),
                    ..none()
                })
                .get("prequeue_secs")
                .is_some()
            );
        }
    }

    #[test]
    fn emails_and_passwords() {
        assert_eq!(Email::parse(" Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "a@b@c",
            "ada\0@example.com",
            "ada@exam\u{7}ple.com",
            "ada@example.com\u{9b}",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse("long enough pass").is_ok());
        assert!(NewPassword::parse(&"x".repeat(129)).is_err());
    }
}
