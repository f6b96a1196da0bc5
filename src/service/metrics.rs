//! Counters for `GET /metrics` (Prometheus text format 0.0.4). Plain atomics: recording is a
//! relaxed add on the request path, and a scrape reads them without locking anything.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds, in seconds, of the request-duration histogram buckets.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// How a password check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    /// Wrong password, unknown or disabled account.
    Failure,
    /// Refused by the per-account or per-address limit before any check.
    Throttled,
}

impl LoginOutcome {
    /// In the order of [`Metrics::logins`]: the discriminant is the index.
    const ALL: [Self; 3] = [Self::Success, Self::Failure, Self::Throttled];

    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Throttled => "throttled",
        }
    }
}

/// Process-wide counters, shared through [`super::Services`].
#[derive(Debug, Default)]
pub struct Metrics {
    /// Responses by status class: 1xx … 5xx.
    responses: [AtomicU64; 5],
    /// Cumulative counts per bucket (Prometheus buckets are cumulative; we add to every
    /// bucket the duration fits in).
    duration_buckets: [AtomicU64; BUCKETS.len()],
    duration_micros_sum: AtomicU64,
    duration_count: AtomicU64,
    logins: [AtomicU64; 3],
}

/// Values read at scrape time rather than counted.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Rows per table.
    pub table_rows: Vec<(&'static str, u64)>,
    /// 1 while recent mail delivery failed.
    pub mail_failing: bool,
    pub started_at: i64,
    /// Durable write transactions committed, and whether the store can write now.
    pub store_commits: u64,
    /// Durable commits (fsyncs): each covers every write committed before it.
    pub store_durable_commits: u64,
    pub store_writable: bool,
}

impl Metrics {
    /// Records one answered request.
    pub fn record_response(&self, status: u16, micros: u64) {
        if let Some(c) = self
            .responses
            .get(usize::from(status / 100).wrapping_sub(1))
        {
            c.fetch_add(1, Relaxed);
        }
        let seconds = micros as f64 / 1e6;
        for (bound, bucket) in BUCKETS.iter().zip(&self.duration_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.duration_micros_sum.fetch_add(micros, Relaxed);
        self.duration_count.fetch_add(1, Relaxed);
    }

    /// Records how a password check ended.
    pub fn record_login(&self, outcome: LoginOutcome) {
        self.logins[outcome as usize].fetch_add(1, Relaxed);
    }

    /// The exposition text.
    /// Password checks since start, by outcome (`success`, `failure`, `throttled`).
    pub fn logins(&self) -> Vec<(&'static str, u64)> {
        LoginOutcome::ALL
            .iter()
            .zip(&self.logins)
            .map(|(o, c)| (o.label(), c.load(Relaxed)))
            .collect()
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(2048);
        let _ = writeln!(
            out,
            "# HELP portcullis_http_responses_total HTTP responses by status class.\n# TYPE portcullis_http_responses_total counter"
        );
        for (i, c) in self.responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "portcullis_http_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP portcullis_http_request_duration_seconds Time to answer a request.\n# TYPE portcullis_http_request_duration_seconds histogram"
        );
        for (bound, bucket) in BUCKETS.iter().zip(&self.duration_buckets) {
            let _ = writeln!(
                out,
                "portcullis_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.duration_count.load(Relaxed);
        let _ = writeln!(
            out,
            "portcullis_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\nportcullis_http_request_duration_seconds_sum {}\nportcullis_http_request_duration_seconds_count {count}",
            self.duration_micros_sum.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP portcullis_logins_total Password checks (every login surface) by outcome.\n# TYPE portcullis_logins_total counter"
        );
        for (o, c) in LoginOutcome::ALL.iter().zip(&self.logins) {
            let _ = writeln!(
                out,
                "portcullis_logins_total{{outcome=\"{}\"}} {}",
                o.label(),
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP portcullis_table_rows Rows per database table.\n# TYPE portcullis_table_rows gauge"
        );
        for (table, rows) in &gauges.table_rows {
            let _ = writeln!(out, "portcullis_table_rows{{table=\"{table}\"}} {rows}");
        }
        let _ = writeln!(
            out,
            "# HELP portcullis_mail_delivery_failing 1 while mail delivery is failing.\n# TYPE portcullis_mail_delivery_failing gauge\nportcullis_mail_delivery_failing {}",
            u8::from(gauges.mail_failing)
        );
        let _ = writeln!(
            out,
            "# HELP portcullis_start_time_seconds When the process started (Unix time).\n# TYPE portcullis_start_time_seconds gauge\nportcullis_start_time_seconds {}",
            gauges.started_at
        );
        let _ = writeln!(
            out,
            "# HELP portcullis_store_commits_total Database write transactions committed (each is acknowledged only once durable).\n# TYPE portcullis_store_commits_total counter\nportcullis_store_commits_total {}",
            gauges.store_commits
        );
        let _ = writeln!(
            out,
            "# HELP portcullis_store_durable_commits_total Durable commits (fsyncs); group commit makes each cover every write before it.\n# TYPE portcullis_store_durable_commits_total counter\nportcullis_store_durable_commits_total {}",
            gauges.store_durable_commits
        );
        let _ = writeln!(
            out,
            "# HELP portcullis_store_writable 0 while a storage fault (such as a full disk) stops writes.\n# TYPE portcullis_store_writable gauge\nportcullis_store_writable {}",
            u8::from(gauges.store_writable)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_class_bucket_and_outcome() {
        let m = Metrics::default();
        m.record_response(200, 800);
        m.record_response(404, 30_000);
        m.record_response(999, 10);
        m.record_login(LoginOutcome::Failure);
        let text = m.render(&Gauges {
            table_rows: vec![("users", 3)],
            mail_failing: false,
            started_at: 1,
            store_commits: 0,
            store_durable_commits: 0,
            store_writable: true,
        });
        assert!(text.contains("portcullis_http_responses_total{class=\"2xx\"} 1\n"));
        assert!(text.contains("portcullis_http_responses_total{class=\"4xx\"} 1\n"));
        assert!(text.contains("portcullis_http_request_duration_seconds_bucket{le=\"0.001\"} 2\n"));
        assert!(text.contains("portcullis_http_request_duration_seconds_bucket{le=\"0.05\"} 3\n"));
        assert!(text.contains("portcullis_http_request_duration_seconds_count 3\n"));
        assert!(text.contains("portcullis_logins_total{outcome=\"failure\"} 1\n"));
        assert!(text.contains("portcullis_table_rows{table=\"users\"} 3\n"));
    }
}
