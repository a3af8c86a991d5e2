//! PutMetricData in the Query protocol (the form CloudWatch has always accepted, and moto
//! emulates): `Action=PutMetricData&Version=2010-08-01&Namespace=...&MetricData.member.N...`.

use super::Datum;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// CloudWatch takes at most 1000 data points per call; ecs-boot sends a few dozen at most, and
/// more than this is a bug (cut, not sent in pieces: a publication is one bounded call).
pub const MAX_DATA: usize = 150;

/// The form body for `data` into `namespace`, every value timestamped `at`.
pub fn put_metric_data(namespace: &str, data: &[Datum], at: OffsetDateTime) -> String {
    let stamp = at
        .replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default();
    let mut pairs: Vec<(String, String)> = vec![
        ("Action".into(), "PutMetricData".into()),
        ("Version".into(), "2010-08-01".into()),
        ("Namespace".into(), namespace.into()),
    ];
    for (i, d) in data.iter().take(MAX_DATA).enumerate() {
        let m = format!("MetricData.member.{}", i + 1);
        pairs.push((format!("{m}.MetricName"), d.name.into()));
        for (j, (name, value)) in d.dimensions.iter().enumerate() {
            let dim = format!("{m}.Dimensions.member.{}", j + 1);
            pairs.push((format!("{dim}.Name"), (*name).into()));
            pairs.push((format!("{dim}.Value"), value.clone()));
        }
        pairs.push((format!("{m}.Timestamp"), stamp.clone()));
        pairs.push((format!("{m}.Value"), number(d.value)));
        pairs.push((format!("{m}.Unit"), d.unit.as_str().into()));
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A finite value as CloudWatch reads it; NaN and infinities (which it refuses) become 0.
fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "0".into()
    }
}

/// RFC 3986 percent-encoding: everything but unreserved characters, as SigV4 expects.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Unit;
    use time::macros::datetime;

    #[test]
    fn renders_the_query_form_cloudwatch_expects() {
        let data = [Datum {
            name: "BootDuration",
            dimensions: vec![
                ("AutoScalingGroupName", "web asg".into()),
                ("ClusterName", "web/1".into()),
            ],
            value: 81.25,
            unit: Unit::Seconds,
        }];
        let body = put_metric_data("ECSBoot", &data, datetime!(2026-11-30 10:00:00.5 UTC));
        assert_eq!(
            body,
            "Action=PutMetricData&Version=2010-08-01&Namespace=ECSBoot\
             &MetricData.member.1.MetricName=BootDuration\
             &MetricData.member.1.Dimensions.member.1.Name=AutoScalingGroupName\
             &MetricData.member.1.Dimensions.member.1.Value=web%20asg\
             &MetricData.member.1.Dimensions.member.2.Name=ClusterName\
             &MetricData.member.1.Dimensions.member.2.Value=web%2F1\
             &MetricData.member.1.Timestamp=2026-11-30T10%3A00%3A00Z\
             &MetricData.member.1.Value=81.25\
             &MetricData.member.1.Unit=Seconds"
        );
    }

    #[test]
    fn odd_values_never_make_a_refused_call() {
        assert_eq!(number(f64::NAN), "0");
        assert_eq!(number(1.0), "1");
        assert_eq!(encode("é&="), "%C3%A9%26%3D");
    }
}
