//! Account files generated for a test, when the samples are too few or too varied.

use std::path::Path;

/// Writes `n` simple accounts as JSON Lines, each owing one liability due 2024-04-15, so
/// each yields exactly one intent to offset `CT-9xxxxxx/intent_to_offset/L1`; returns those
/// keys in order.
pub fn write_intent_accounts(path: &Path, n: usize) -> Vec<String> {
    let mut text = String::new();
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("CT-9{i:06}");
        let account = serde_json::json!({
            "account_id": id,
            "taxpayer": {"name": format!("Crash Test Payer {i}"), "spouse_name": null, "tin_last4": "1234"},
            "address": {"line1": format!("{} Main St", i + 1), "line2": null, "city": "Hartford",
                        "state": "CT", "zip": "06105", "country": "US"},
            "email": null,
            "electronic_delivery": false,
            "language": "en",
            "balance_as_of": "2026-11-01",
            "liabilities": [{"id": "L1", "tax_type": "individual_income", "period": "2023",
                             "due_date": "2024-04-15",
                             "tax": format!("{}.{:02}", 100 + i / 100, i % 100),
                             "penalty": "0.00", "interest": "0.00", "enforceable": true}],
            "payment_plan": null,
            "bankruptcy": null,
            "notices": [],
            "reviews": [],
            "offsets": [],
            "late_returns": []
        });
        text.push_str(&serde_json::to_string(&account).expect("serialize account"));
        text.push('\n');
        keys.push(format!("{id}/intent_to_offset/L1"));
    }
    std::fs::write(path, text).expect("write accounts");
    keys
}
