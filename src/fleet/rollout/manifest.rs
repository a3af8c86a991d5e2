//! The AMI a Packer manifest names (`post-processor "manifest"`, packer/ecs-boot.pkr.hcl): the
//! build of the last run (`last_run_uuid`), its `artifact_id` "region:ami-…[,region:ami-…]" for
//! our region, and the `custom_data` the template records (the AMI parameter). Pure.

use serde_json::Value;

/// The largest manifest we read: one run appends one small build entry.
pub const MAX_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub ami: String,
    /// `custom_data.ami_ssm_parameter`: where this image's id is published.
    pub parameter: Option<String>,
    pub architecture: Option<String>,
    pub run_uuid: Option<String>,
}

/// The AMI of the last run in `region`. Errors name the manifest field, never quote content.
pub fn read(text: &str, region: &str) -> Result<Built, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let builds = doc
        .get("builds")
        .and_then(Value::as_array)
        .ok_or("no `builds` list")?;
    let last = doc.get("last_run_uuid").and_then(Value::as_str);
    let build = builds
        .iter()
        .rev()
        .find(|b| last.is_none() || b.get("packer_run_uuid").and_then(Value::as_str) == last)
        .ok_or("no build of the last run (`last_run_uuid`)")?;
    let artifact = build
        .get("artifact_id")
        .and_then(Value::as_str)
        .ok_or("the build has no `artifact_id`")?;
    let ami = artifact
        .split(',')
        .filter_map(|pair| pair.trim().split_once(':'))
        .find(|(r, _)| *r == region)
        .map(|(_, ami)| ami.to_string())
        .ok_or_else(|| format!("`artifact_id` names no AMI in {region}"))?;
    if !is_ami_id(&ami) {
        return Err(format!("`artifact_id` for {region} is not an AMI id"));
    }
    let custom = |key: &str| {
        build
            .get("custom_data")
            .and_then(|c| c.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Ok(Built {
        ami,
        parameter: custom("ami_ssm_parameter"),
        architecture: custom("architecture"),
        run_uuid: build
            .get("packer_run_uuid")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// `ami-` and 8 or 17 hex digits.
pub fn is_ami_id(s: &str) -> bool {
    s.strip_prefix("ami-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{"builds": [
        {"name": "ecs-boot", "packer_run_uuid": "old", "artifact_id": "us-east-1:ami-0000000a"},
        {"name": "ecs-boot", "packer_run_uuid": "run-2",
         "artifact_id": "eu-west-1:ami-0123456789abcdef0,us-east-1:ami-12c6146b",
         "custom_data": {"ami_ssm_parameter": "/ecs-boot/ami/x86_64", "architecture": "x86_64"}}
        ], "last_run_uuid": "run-2"}"#;

    #[test]
    fn the_last_runs_ami_in_our_region() {
        let b = read(MANIFEST, "us-east-1").unwrap();
        assert_eq!(b.ami, "ami-12c6146b");
        assert_eq!(b.parameter.as_deref(), Some("/ecs-boot/ami/x86_64"));
        assert_eq!(b.run_uuid.as_deref(), Some("run-2"));
        assert_eq!(
            read(MANIFEST, "eu-west-1").unwrap().ami,
            "ami-0123456789abcdef0"
        );
    }

    #[test]
    fn errors_name_the_field_not_the_content() {
        let e = read(MANIFEST, "ap-south-1").unwrap_err();
        assert_eq!(e, "`artifact_id` names no AMI in ap-south-1");
        let bad = r#"{"builds":[{"artifact_id":"us-east-1:$(rm -rf /)"}]}"#;
        let e = read(bad, "us-east-1").unwrap_err();
        assert!(!e.contains("rm -rf"), "{e}");
        assert!(read("{", "us-east-1").unwrap_err().starts_with("not JSON"));
        assert_eq!(read("{}", "us-east-1").unwrap_err(), "no `builds` list");
    }

    #[test]
    fn ami_ids() {
        assert!(is_ami_id("ami-12c6146b") && is_ami_id("ami-0123456789abcdef0"));
        assert!(
            !is_ami_id("ami-12c6146") && !is_ami_id("ami-zzzzzzzz") && !is_ami_id("i-12c6146b")
        );
    }
}
