//! The buyer's details on an order, checked field by field so that a form can show every
//! error next to its field.

use serde::{Deserialize, Serialize};

pub use crate::fields::FieldErrors;

/// What a buyer typed, unchecked.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct BuyerInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub age: String,
    #[serde(default)]
    pub gender: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
    Diverse,
    Unspecified,
}

impl Gender {
    pub const ALL: [Gender; 4] = [Gender::Female, Gender::Male, Gender::Diverse, Gender::Unspecified];

    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Diverse => "diverse",
            Gender::Unspecified => "unspecified",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Gender::Female => "Female",
            Gender::Male => "Male",
            Gender::Diverse => "Diverse",
            Gender::Unspecified => "Prefer not to say",
        }
    }

    pub fn parse(s: &str) -> Option<Gender> {
        Gender::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// Checked buyer details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Buyer {
    pub name: String,
    pub email: String,
    pub age: i16,
    pub gender: Gender,
}

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_EMAIL_BYTES: usize = 254;

impl Buyer {
    pub fn parse(input: &BuyerInput) -> Result<Buyer, FieldErrors> {
        let mut errors = FieldErrors::default();
        let name = input.name.trim();
        if name.is_empty() {
            errors.add("name", "Please enter your name.");
        } else if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            errors.add("name", "Please enter a name of at most 200 plain characters.");
        }
        let email = input.email.trim();
        if !crate::email::is_plausible(email) {
            errors.add("email", "Please enter a valid email address, like name@example.com.");
        }
        let age = match input.age.trim().parse::<i16>() {
            Ok(age) if (0..=130).contains(&age) => Some(age),
            _ => {
                errors.add("age", "Please enter your age as a whole number from 0 to 130.");
                None
            }
        };
        let gender = Gender::parse(input.gender.trim());
        if gender.is_none() {
            errors.add("gender", "Please choose one of the options.");
        }
        match (age, gender) {
            (Some(age), Some(gender)) if errors.is_empty() => Ok(Buyer {
                name: name.to_string(),
                email: email.to_string(),
                age,
                gender,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, email: &str, age: &str, gender: &str) -> BuyerInput {
        BuyerInput {
            name: name.into(),
            email: email.into(),
            age: age.into(),
            gender: gender.into(),
        }
    }

    #[test]
    fn good_details_pass_trimmed() {
        let b = Buyer::parse(&input(" Ada ", "ada@example.com", "36", "female")).unwrap();
        assert_eq!(b.name, "Ada");
        assert_eq!(b.age, 36);
        assert_eq!(b.gender, Gender::Female);
    }

    #[test]
    fn each_bad_field_is_named() {
        let e = Buyer::parse(&input("", "no-at-sign", "abc", "robot")).unwrap_err();
        for field in ["name", "email", "age", "gender"] {
            assert!(e.get(field).is_some(), "{field} missing in {e}");
        }
        for age in ["-1", "131", "1.5", ""] {
            let e = Buyer::parse(&input("A", "a@b.co", age, "male")).unwrap_err();
            assert_eq!(e.0.len(), 1);
            assert!(e.get("age").is_some());
        }
        for email in [
            "@b.co",
            "a@",
            "a@b",
            "a b@c.de",
            "a@b@c.de",
            &format!("{}@b.co", "x".repeat(300)),
        ] {
            assert!(
                Buyer::parse(&input("A", email, "20", "male"))
                    .unwrap_err()
                    .get("email")
                    .is_some(),
                "{email}"
            );
        }
        assert!(Buyer::parse(&input(&"n".repeat(10_000), "a@b.co", "20", "male")).is_err());
    }
}
