//! `ecs-boot preflight`: before a fleet moves to an AMI with this version's trust rules, list
//! every tag the new AMI would refuse and why. Offline from given tags, or live from the tags
//! Auto Scaling groups propagate to their instances (operator credentials, `--asg`).

use crate::config::Config;
use crate::config::preflight::{self, Refusal};
use crate::error::{Error, Result};
use crate::sources::aws::{self, Aws};
use crate::util::escape::for_terminal as escape;
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args)]
pub struct PreflightArgs {
    /// A tag as the instance would see it, KEY=VALUE (repeatable)
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// A JSON object of tags, e.g. from `aws ec2 describe-tags` reshaped to {"key": "value"}
    #[arg(long, value_name = "FILE")]
    pub tags_file: Option<PathBuf>,
    /// Check the tags this Auto Scaling group propagates to its instances (repeatable)
    #[arg(long = "asg", value_name = "NAME")]
    pub asgs: Vec<String>,
    /// Region for --asg [default: the SDK's]
    #[arg(long)]
    pub region: Option<String>,
    /// One JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

/// Tag sets bigger than this are not tag sets (EC2 allows 50 tags per resource).
const MAX_TAGS_FILE: u64 = 1024 * 1024;

#[derive(serde::Serialize)]
struct Finding {
    source: String,
    #[serde(flatten)]
    refusal: Refusal,
}

impl PreflightArgs {
    /// 0: nothing would be refused; 1: something would; errors (unreadable input) exit 2.
    pub async fn run(self, config: &Config) -> Result<crate::cli::ExitCode> {
        let mut sets: Vec<(String, BTreeMap<String, String>)> = Vec::new();
        if !self.tags.is_empty() {
            let mut given = BTreeMap::new();
            for t in &self.tags {
                let (k, v) = t
                    .split_once('=')
                    .ok_or_else(|| Error::Other(format!("--tag {:?}: use KEY=VALUE", escape(t))))?;
                given.insert(k.to_string(), v.to_string());
            }
            sets.push(("--tag".into(), given));
        }
        if let Some(path) = &self.tags_file {
            sets.push((path.display().to_string(), read_tags_file(path)?));
        }
        if !self.asgs.is_empty() {
            let aws = Aws::load_default(self.region.as_deref()).await;
            for asg in &self.asgs {
                sets.push((format!("asg {asg}"), group_tags(&aws, asg).await?));
            }
        }
        if sets.is_empty() {
            return Err(Error::Other(
                "nothing to check: give --tag KEY=VALUE, --tags-file FILE or --asg NAME".into(),
            ));
        }
        let findings: Vec<Finding> = sets
            .iter()
            .flat_map(|(source, tags)| {
                preflight::check(config, tags)
                    .into_iter()
                    .map(|refusal| Finding {
                        source: source.clone(),
                        refusal,
                    })
            })
            .collect();
        if self.json {
            let doc = serde_json::json!({
                "checked": sets.iter().map(|(s, _)| s).collect::<Vec<_>>(),
                "refusals": findings,
            });
            println!("{doc}");
        } else if findings.is_empty() {
            println!(
                "ok: this AMI's rules refuse none of the tags checked ({} sets)",
                sets.len()
            );
        } else {
            for f in &findings {
                println!(
                    "{}\t{}\t{}",
                    escape(&f.source),
                    escape(&f.refusal.tag),
                    escape(&f.refusal.reason)
                );
            }
            eprintln!(
                "{} tags would be refused; see the README's \"Upgrading to the trust rules\"",
                findings.len()
            );
        }
        Ok(if findings.is_empty() { 0 } else { 1 })
    }
}

fn read_tags_file(path: &PathBuf) -> Result<BTreeMap<String, String>> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TAGS_FILE).read_to_string(&mut text))
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Other(format!(
            "{}: not a JSON object of string tags ({})",
            path.display(),
            crate::sources::imds::json_problem(&e)
        ))
    })
}

/// The tags `asg` propagates at launch: what its next instances will carry.
async fn group_tags(aws: &Aws, asg: &str) -> Result<BTreeMap<String, String>> {
    use aws_sdk_autoscaling::types::Filter;
    let filter = Filter::builder()
        .name("auto-scaling-group")
        .values(asg)
        .build();
    let mut tags = BTreeMap::new();
    let mut pages = aws
        .autoscaling()
        .describe_tags()
        .filters(filter)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(|e| Error::Other(format!("DescribeTags for {asg}: {}", aws::describe(&e))))?;
        for t in page.tags() {
            if t.propagate_at_launch() == Some(true)
                && let (Some(k), Some(v)) = (t.key(), t.value())
            {
                tags.insert(k.to_string(), v.to_string());
            }
        }
    }
    Ok(tags)
}
