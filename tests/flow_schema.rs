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
