//! The menu: drinks, their modifier groups and options, the default menu,
//! and validation of a menu an admin sends.

use crate::error::DomainError;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

pub const MAX_DRINKS: usize = 100;
pub const MAX_GROUPS_PER_DRINK: usize = 10;
pub const MAX_OPTIONS_PER_GROUP: usize = 20;
pub const MAX_NAME_CHARS: usize = 40;
pub const MAX_ICON_CHARS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Drink {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub icon: String,
    #[serde(default = "yes")]
    pub available: bool,
    #[serde(default)]
    pub modifier_groups: Vec<ModifierGroup>,
}

/// A choice the customer makes for a drink; at most one option per group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModifierGroup {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub required: bool,
    pub options: Vec<MenuOption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MenuOption {
    pub id: String,
    pub name: String,
    #[serde(default = "yes")]
    pub available: bool,
}

fn yes() -> bool {
    true
}

/// The menu with its names trimmed and cleared of invisible formatting
/// characters (see [`crate::text`]): names are shown to every customer.
pub fn cleaned(mut menu: Vec<Drink>) -> Vec<Drink> {
    let clean = |name: &mut String| *name = crate::text::strip_invisible(name).trim().to_string();
    for drink in &mut menu {
        clean(&mut drink.name);
        clean(&mut drink.icon);
        for group in &mut drink.modifier_groups {
            clean(&mut group.name);
            group.options.iter_mut().for_each(|option| clean(&mut option.name));
        }
    }
    menu
}

/// Checks a whole menu; the first problem found is reported with its path
/// (e.g. `menu[2].modifierGroups[0].options[1].name`).
pub fn validate_menu(menu: &[Drink]) -> Result<(), DomainError> {
    if menu.is_empty() {
        return Err(invalid("menu", "the menu needs at least one drink"));
    }
    if menu.len() > MAX_DRINKS {
        return Err(invalid("menu", &format!("the menu has {} drinks; at most {MAX_DRINKS}", menu.len())));
    }
    let mut drink_ids = HashSet::new();
    for (d, drink) in menu.iter().enumerate() {
        let at = format!("menu[{d}]");
        check_id(&format!("{at}.id"), &drink.id)?;
        if !drink_ids.insert(drink.id.as_str()) {
            return Err(invalid(&format!("{at}.id"), &format!("duplicate drink id `{}`", drink.id)));
        }
        check_name(&format!("{at}.name"), &drink.name)?;
        if drink.icon.chars().count() > MAX_ICON_CHARS {
            return Err(invalid(&format!("{at}.icon"), &format!("at most {MAX_ICON_CHARS} characters")));
        }
        if drink.modifier_groups.len() > MAX_GROUPS_PER_DRINK {
            return Err(invalid(
                &format!("{at}.modifierGroups"),
                &format!("at most {MAX_GROUPS_PER_DRINK} groups per drink"),
            ));
        }
        let mut group_ids = HashSet::new();
        for (g, group) in drink.modifier_groups.iter().enumerate() {
            let at = format!("{at}.modifierGroups[{g}]");
            check_id(&format!("{at}.id"), &group.id)?;
            if !group_ids.insert(group.id.as_str()) {
                return Err(invalid(&format!("{at}.id"), &format!("duplicate group id `{}`", group.id)));
            }
            check_name(&format!("{at}.name"), &group.name)?;
            if group.options.is_empty() {
                return Err(invalid(&format!("{at}.options"), "a group needs at least one option"));
            }
            if group.options.len() > MAX_OPTIONS_PER_GROUP {
                return Err(invalid(
                    &format!("{at}.options"),
                    &format!("at most {MAX_OPTIONS_PER_GROUP} options per group"),
                ));
            }
            let mut option_ids = HashSet::new();
            for (o, option) in group.options.iter().enumerate() {
                let at = format!("{at}.options[{o}]");
                check_id(&format!("{at}.id"), &option.id)?;
                if !option_ids.insert(option.id.as_str()) {
                    return Err(invalid(&format!("{at}.id"), &format!("duplicate option id `{}`", option.id)));
                }
                check_name(&format!("{at}.name"), &option.name)?;
            }
        }
    }
    Ok(())
}

/// Ids are short slugs: they appear in URLs, keys and metrics labels.
pub fn is_slug(id: &str, max_len: usize) -> bool {
    !id.is_empty()
        && id.len() <= max_len
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

fn check_id(at: &str, id: &str) -> Result<(), DomainError> {
    if is_slug(id, 32) {
        Ok(())
    } else {
        Err(invalid(at, &format!("`{id}` is not a valid id: use 1-32 lowercase letters, digits and dashes")))
    }
}

fn check_name(at: &str, name: &str) -> Result<(), DomainError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(invalid(at, "must not be empty"));
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(at, &format!("at most {MAX_NAME_CHARS} characters")));
    }
    Ok(())
}

fn invalid(at: &str, problem: &str) -> DomainError {
    DomainError::invalid("invalid_menu", format!("{at}: {problem}"))
}

/// The menu a new shop starts with.
pub fn default_menu() -> Vec<Drink> {
    let size = || group("size", "Size", true, &[("small", "Small"), ("regular", "Regular"), ("large", "Large")]);
    let milk = || {
        group(
            "milk",
            "Milk",
            true,
            &[("whole", "Whole milk"), ("oat", "Oat milk"), ("soy", "Soy milk"), ("lactose-free", "Lactose-free milk")],
        )
    };
    let decaf = || group("caffeine", "Caffeine", false, &[("decaf", "Decaf")]);
    let shot = || group("extra", "Extras", false, &[("extra-shot", "Extra shot")]);

    vec![
        drink("espresso", "Espresso", "☕", vec![decaf()]),
        drink("double-espresso", "Double espresso", "☕", vec![decaf()]),
        drink("americano", "Americano", "☕", vec![size(), decaf(), shot()]),
        drink("flat-white", "Flat white", "🥛", vec![milk(), decaf(), shot()]),
        drink("cappuccino", "Cappuccino", "☕", vec![size(), milk(), decaf(), shot()]),
        drink("latte", "Latte", "🥛", vec![size(), milk(), decaf(), shot()]),
        drink("mocha", "Mocha", "🍫", vec![size(), milk(), decaf(), shot()]),
        drink("chai-latte", "Chai latte", "🍵", vec![size(), milk()]),
        drink("hot-chocolate", "Hot chocolate", "🍫", vec![size(), milk()]),
    ]
}

fn drink(id: &str, name: &str, icon: &str, modifier_groups: Vec<ModifierGroup>) -> Drink {
    Drink { id: id.into(), name: name.into(), icon: icon.into(), available: true, modifier_groups }
}

fn group(id: &str, name: &str, required: bool, options: &[(&str, &str)]) -> ModifierGroup {
    ModifierGroup {
        id: id.into(),
        name: name.into(),
        required,
        options: options
            .iter()
            .map(|(id, name)| MenuOption { id: (*id).into(), name: (*name).into(), available: true })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(menu: &[Drink]) -> String {
        validate_menu(menu).unwrap_err().message()
    }

    #[test]
    fn the_default_menu_is_valid_and_has_the_drinks_of_the_design() {
        let menu = default_menu();
        validate_menu(&menu).unwrap();
        let ids: Vec<_> = menu.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "espresso",
                "double-espresso",
                "americano",
                "flat-white",
                "cappuccino",
                "latte",
                "mocha",
                "chai-latte",
                "hot-chocolate"
            ]
        );
        let cappuccino = &menu[4];
        let milk = cappuccino.modifier_groups.iter().find(|g| g.id == "milk").unwrap();
        assert!(milk.required);
        let milks: Vec<_> = milk.options.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(milks, ["whole", "oat", "soy", "lactose-free"]);
    }

    #[test]
    fn menu_validation_names_the_problem_and_where_it_is() {
        let base = default_menu();
        type Change = Box<dyn Fn(&mut Vec<Drink>)>;
        let cases: Vec<(&str, Change, &str)> = vec![
            ("empty menu", Box::new(|m| m.clear()), "at least one drink"),
            ("empty drink name", Box::new(|m| m[1].name = "  ".into()), "menu[1].name: must not be empty"),
            ("duplicate drink id", Box::new(|m| m[2].id = "espresso".into()), "menu[2].id: duplicate drink id"),
            ("bad drink id", Box::new(|m| m[0].id = "Esp resso".into()), "menu[0].id: `Esp resso` is not a valid id"),
            (
                "duplicate group id",
                Box::new(|m| m[4].modifier_groups[1].id = "size".into()),
                "menu[4].modifierGroups[1].id: duplicate group id",
            ),
            (
                "group without options",
                Box::new(|m| m[4].modifier_groups[0].options.clear()),
                "menu[4].modifierGroups[0].options: a group needs at least one option",
            ),
            (
                "duplicate option id",
                Box::new(|m| m[4].modifier_groups[1].options[1].id = "whole".into()),
                "menu[4].modifierGroups[1].options[1].id: duplicate option id",
            ),
            (
                "empty option name",
                Box::new(|m| m[4].modifier_groups[1].options[0].name = "".into()),
                "menu[4].modifierGroups[1].options[0].name: must not be empty",
            ),
            ("long name", Box::new(|m| m[0].name = "x".repeat(41)), "menu[0].name: at most 40 characters"),
        ];
        for (what, change, expected) in cases {
            let mut menu = base.clone();
            change(&mut menu);
            let message = problem(&menu);
            assert!(message.contains(expected), "{what}: got `{message}`");
        }
    }

    #[test]
    fn unknown_fields_in_a_menu_are_refused() {
        let json = r#"[{"id":"x","name":"X","colour":"red"}]"#;
        let err = serde_json::from_str::<Vec<Drink>>(json).unwrap_err().to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn availability_defaults_to_true() {
        let menu: Vec<Drink> = serde_json::from_str(r#"[{"id":"x","name":"X"}]"#).unwrap();
        assert!(menu[0].available);
        assert!(menu[0].modifier_groups.is_empty());
    }

    #[test]
    fn slugs_are_lowercase_letters_digits_and_inner_dashes() {
        for ok in ["main", "a", "cafe-2", "x1"] {
            assert!(is_slug(ok, 32), "{ok}");
        }
        for bad in ["", "Main", "-a", "a-", "a b", "a/b", "á", &"a".repeat(33)] {
            assert!(!is_slug(bad, 32), "{bad}");
        }
    }
}
