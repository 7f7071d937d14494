//! Test guest: exports the rule interface of a contract version the host does not speak
//! (`tagbust:rules@0.9.0`). Loading it must fail with a message naming that version.

wit_bindgen::generate!({
    inline: "
        package tagbust:rules@0.9.0;
        interface rule {
            describe: func() -> string;
        }
        world future-rule {
            export rule;
        }
    ",
});

struct Future;

impl exports::tagbust::rules::rule::Guest for Future {
    fn describe() -> String {
        "from the future".to_owned()
    }
}

export!(Future);
