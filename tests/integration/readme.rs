//! The README's examples stay true: every ```bencode block decodes and re-encodes to itself (valid,
//! keys sorted), and the failure example is byte for byte what the tracker answers.

use crate::common::*;

fn bencode_blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```bencode" {
            let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            blocks.push(block.join("\n"));
        }
    }
    blocks
}

#[test]
fn every_bencoded_example_in_the_readme_is_valid() {
    let blocks = bencode_blocks();
    assert!(
        blocks.len() >= 2,
        "the README has its bencode examples: {blocks:?}"
    );
    for block in &blocks {
        let value: Bencode = serde_bencode::from_bytes(block.as_bytes())
            .unwrap_or_else(|e| panic!("README example is not bencode ({e}): {block}"));
        let again = serde_bencode::to_bytes(&value).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&again),
            *block,
            "keys out of order or not canonical"
        );
    }
}

#[test]
fn the_readmes_failure_example_is_what_the_tracker_says() {
    let example = bencode_blocks()
        .into_iter()
        .find(|b| b.contains("failure reason"))
        .expect("a failure example");
    let tracker = Tracker::start(&[]);
    let reply = tracker.get(&format!(
        "/announce?info_hash=abc&peer_id={}&port=1",
        escape(&id(1))
    ));
    assert_eq!(reply.text(), example);
}
