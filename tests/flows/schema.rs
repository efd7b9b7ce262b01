//! The shipped `ivr-flows/flow.schema.json` (what editors read through the
//! `yaml-language-server` modeline) must be exactly what `boomerang schema flow` prints.

#[test]
fn the_shipped_flow_schema_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ivr-flows/flow.schema.json");
    let shipped = std::fs::read_to_string(path).unwrap_or_default();
    let current = format!(
        "{}\n",
        serde_json::to_string_pretty(&boomerang::flow::model::schema()).unwrap()
    );
    assert!(
        shipped == current,
        "ivr-flows/flow.schema.json is out of date with the flow model; regenerate it with\n    \
         cargo run -- schema flow > ivr-flows/flow.schema.json"
    );
}

/// The editor's schema and the loader agree on every range: the schema states it, and the
/// loader refuses the value just above it with the same bounds.
#[test]
fn schema_ranges_match_the_loader() {
    use std::path::Path;

    let schema = boomerang::flow::model::schema();
    let blocks = schema["$defs"]["Block"]["oneOf"].as_array().unwrap();
    let config = boomerang::config::Config::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("boomerang.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ctx = boomerang::flow::LoadContext {
        config: &config,
        prompts: None,
    };
    let body = |block: &str| match block {
        "user_input" => "variable: v",
        "menu" => "prompts: [welcome]\n    options: {1: bye}",
        "callback_v2" => "queue: Sales_VQ_CB\n    offer_prompts: [offer-callback]",
        _ => "queue: Sales_VQ",
    };
    for (block, prop, lo, hi) in [
        ("user_input", "min_digits", 1, 32),
        ("user_input", "max_digits", 1, 32),
        ("user_input", "first_digit_timeout_seconds", 1, 60),
        ("user_input", "inter_digit_timeout_seconds", 1, 30),
        ("user_input", "retries", 0, 9),
        ("menu", "retries", 0, 9),
        ("menu", "timeout_seconds", 1, 60),
        ("callback_v2", "attempts", 1, 9),
        ("route_call", "timeout_seconds", 1, 86_400),
        ("route_call", "announce_every_seconds", 10, 3600),
    ] {
        let alt = blocks
            .iter()
            .find(|a| a["properties"]["type"]["const"] == block)
            .unwrap();
        let p = &alt["properties"][prop];
        assert_eq!(p["minimum"], lo, "{block}.{prop}");
        assert_eq!(p["maximum"], hi, "{block}.{prop}");
        let text = format!(
            "application: t\ntype: default\nself_service:\n  - type: {block}\n    {}\n    {prop}: {}\n  - type: terminate_call\n    id: bye\n",
            body(block),
            hi + 1
        );
        let err = boomerang::flow::load_str(Path::new("t.yaml"), &text, &ctx).unwrap_err();
        let messages: Vec<String> = err.diagnostics.iter().map(|d| d.message.clone()).collect();
        assert!(
            messages.contains(&format!(
                "{prop} must be between {lo} and {hi}, not {}",
                hi + 1
            )),
            "{block}.{prop}: {messages:?}"
        );
    }
    let silence = &schema["$defs"]["PromptItemSpec"]["properties"]["silence_ms"];
    assert_eq!(
        (silence["minimum"].clone(), silence["maximum"].clone()),
        (1.into(), 60_000.into())
    );
}
