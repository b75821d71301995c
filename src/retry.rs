//! Retry policy: exponential backoff for transient failures, dead letter when they persist or
//! when a call can never succeed as it is, slow patient retries for what an operator must fix.

/// How bad a failure is, for the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Network, 5xx, unreadable answer: try again with backoff, dead-letter after `max_attempts`.
    Transient,
    /// The peer asked us to wait until a given time (rate limit, lockout): not an attempt.
    WaitUntil(i64),
    /// Credentials or permissions: only the operator can fix it; retried slowly, never dropped.
    Operator,
    /// The request itself was refused (invalid_request, 400/422): straight to the dead letters.
    Permanent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_ms: i64,
    pub max_backoff_ms: i64,
    pub max_attempts: i64,
    /// How often work blocked on the operator (credentials, mappings) is looked at again.
    pub operator_recheck_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base_ms: 30_000, max_backoff_ms: 3_600_000, max_attempts: 10, operator_recheck_ms: 600_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again at this time (unix ms); `counts` says whether this failure used up an attempt.
    RetryAt { at_ms: i64, counts: bool },
    DeadLetter,
}

impl RetryPolicy {
    /// Backoff after `attempts` failed attempts: base · 2^attempts, capped.
    pub fn backoff_ms(&self, attempts: i64) -> i64 {
        let exp = attempts.clamp(0, 30) as u32;
        self.base_ms.saturating_mul(1i64 << exp).min(self.max_backoff_ms)
    }

    /// `attempts` is how many attempts had already failed before this one.
    pub fn decide(&self, kind: FailureKind, attempts: i64, now_ms: i64) -> Decision {
        match kind {
            FailureKind::Permanent => Decision::DeadLetter,
            FailureKind::Operator => Decision::RetryAt { at_ms: now_ms + self.operator_recheck_ms, counts: false },
            FailureKind::WaitUntil(t) => Decision::RetryAt { at_ms: t.max(now_ms + 1_000), counts: false },
            FailureKind::Transient if attempts + 1 >= self.max_attempts => Decision::DeadLetter,
            FailureKind::Transient => Decision::RetryAt { at_ms: now_ms + self.backoff_ms(attempts), counts: true },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff_ms(0), 30_000);
        assert_eq!(p.backoff_ms(3), 240_000);
        assert_eq!(p.backoff_ms(20), 3_600_000);
    }

    #[test]
    fn transient_failures_dead_letter_after_max_attempts() {
        let p = RetryPolicy::default();
        assert_eq!(p.decide(FailureKind::Transient, 0, 0), Decision::RetryAt { at_ms: 30_000, counts: true });
        assert_eq!(p.decide(FailureKind::Transient, 9, 0), Decision::DeadLetter);
    }

    #[test]
    fn permanent_operator_and_waits() {
        let p = RetryPolicy::default();
        assert_eq!(p.decide(FailureKind::Permanent, 0, 0), Decision::DeadLetter);
        assert_eq!(p.decide(FailureKind::Operator, 50, 0), Decision::RetryAt { at_ms: 600_000, counts: false });
        assert_eq!(p.decide(FailureKind::WaitUntil(90_000), 50, 0), Decision::RetryAt { at_ms: 90_000, counts: false });
        assert_eq!(p.decide(FailureKind::WaitUntil(0), 0, 5_000), Decision::RetryAt { at_ms: 6_000, counts: false });
    }
}
