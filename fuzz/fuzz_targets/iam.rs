//! Fuzzes the IAM JSON reader: a `.json` file goes through `yaml::parse_single` and, when it holds a
//! `Statement`, the IAM trust-policy rules (otherwise the Kubernetes rules), then every report format.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kpath_fuzz::check_file("policy.json", data);
});
