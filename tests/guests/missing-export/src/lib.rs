//! Test guest: exports `tagbust:rules/rule@0.1.0`, but without `describe` or `evaluate`.
//! Loading it must fail with a message saying what is missing.

wit_bindgen::generate!({
    inline: "
        package tagbust:rules@0.1.0;
        interface rule {
            ping: func() -> u32;
        }
        world hollow-rule {
            export rule;
        }
    ",
});

struct Hollow;

impl exports::tagbust::rules::rule::Guest for Hollow {
    fn ping() -> u32 {
        7
    }
}

export!(Hollow);
