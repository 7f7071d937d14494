//! [`Text`]: a string of a write event that a component reads in place.
//!
//! Inside a component, the host's whole batch arrives as one buffer that lives as long as the
//! instance (one batch). The event's tenant, resource, context and transaction are views into
//! that buffer, validated as UTF-8 once and never copied or allocated; built natively (unit
//! tests, [`WriteEvent::new`](crate::WriteEvent::new)), they own their bytes. Either way a
//! `Text` reads like a `&str`: it derefs to one, displays, compares with `str` and `String`
//! both ways, and converts into a `String`.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::ops::Deref;

/// A string of a write event: borrowed from the batch inside a component, owned otherwise.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(Cow<'static, str>);

impl Text {
    /// A view of text that lives as long as the program (inside a component: the batch).
    pub const fn borrowed(s: &'static str) -> Text {
        Text(Cow::Borrowed(s))
    }

    /// The text as a `&str`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text as an owned `String` (a copy when it is a view).
    pub fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Cow::Owned(s.to_owned()))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Cow::Owned(s))
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.into_string()
    }
}

/// `Text == x` and `x == Text` for the string types a rule compares with.
macro_rules! text_eq {
    ($($other:ty),*) => {$(
        impl PartialEq<$other> for Text {
            fn eq(&self, other: &$other) -> bool {
                self.as_str() == AsRef::<str>::as_ref(other)
            }
        }

        impl PartialEq<Text> for $other {
            fn eq(&self, other: &Text) -> bool {
                AsRef::<str>::as_ref(self) == other.as_str()
            }
        }
    )*};
}

text_eq!(str, &str, String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_a_str_either_way() {
        let views = [Text::borrowed("posts"), Text::from("posts")];
        for t in &views {
            assert_eq!(t, "posts");
            assert_eq!(*t, *"posts");
            assert_eq!("posts", *t);
            assert_eq!(*t, "posts".to_owned());
            assert_eq!("posts".to_owned(), *t);
            assert_eq!(t.len(), 5);
            assert_eq!(format!("{t}:{t:?}"), "posts:\"posts\"");
            assert_eq!(String::from(t.clone()), "posts");
        }
        assert_eq!(views[0], views[1]);
        assert_ne!(Text::from("post"), "posts");
    }
}
