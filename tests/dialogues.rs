//! Runs every conversation in tests/dialogues/*.toml through the engine and reports slot
//! accuracy (correct slots / expected slots), printing each miss.

use std::collections::BTreeMap;
use std::path::Path;

use textback::core::replay::{self, Who};

#[test]
fn corpus_accuracy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialogues");
    let mut profiles = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("profiles")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let profile = replay::parse_profile(&text, &path.display().to_string()).unwrap();
        profile.check().unwrap();
        profiles.insert(name, profile);
    }
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let (mut cases, mut expected, mut correct, mut outcomes_right) = (0, 0, 0, 0);
    let mut misses = Vec::new();
    let verbose = std::env::var_os("DIALOGUE_TRANSCRIPTS").is_some();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for case in replay::parse_cases(&text, &path.display().to_string()).unwrap() {
            let profile = profiles
                .get(&case.profile)
                .unwrap_or_else(|| panic!("no profile {}", case.profile));
            let result = replay::replay(&case, profile).unwrap();
            let score = replay::score(&case, &result);
            cases += 1;
            expected += score.expected_slots;
            correct += score.correct_slots;
            outcomes_right += usize::from(score.outcome_right);
            if verbose || !score.misses.is_empty() {
                println!(
                    "--- {} ({})",
                    case.name,
                    path.file_name().unwrap().to_string_lossy()
                );
                for (who, line) in &result.transcript {
                    let who = match who {
                        Who::Caller => "caller",
                        Who::Business => "  biz ",
                        Who::Note => "  note",
                    };
                    println!("  {who}: {line}");
                }
            }
            misses.extend(score.misses);
        }
    }
    println!("\nMISSES:");
    for miss in &misses {
        println!(
            "  [{}] {}: expected {}, got {}",
            miss.case, miss.what, miss.expected, miss.actual
        );
    }
    let accuracy = correct as f64 / expected as f64 * 100.0;
    println!(
        "\n{cases} cases; slots {correct}/{expected} = {accuracy:.1}%; outcomes {outcomes_right}/{cases}"
    );
    assert!(cases >= 60);
    assert!(
        accuracy >= 95.0,
        "slot accuracy {accuracy:.1}% is under 95%"
    );
}
