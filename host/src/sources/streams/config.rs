//! What a stream source is told, every default with its reason, and how it refuses.

use std::time::Duration;

/// One Redis stream read through one consumer group as one consumer. Build with
/// [`StreamConfig::new`] and change what differs; [`crate::sources::streams::run`] checks it.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// `redis://…` of the server holding the stream (not a Cluster: the dead letter and the
    /// acknowledgement of an entry go in one `MULTI`, and two stream keys rarely share a slot).
    pub url: String,
    pub stream: String,
    pub group: String,
    /// This process's name in the group. Keep it stable across restarts: a restarted consumer
    /// re-reads its own pending entries first.
    pub consumer: String,
    /// Entries per `XREADGROUP` (and per `XAUTOCLAIM` page). Default 256: consecutive entries
    /// go to the host as one submission, so one rule call serves many entries.
    pub batch: usize,
    /// How long one `XREADGROUP` waits for new entries. Default 1 s; must be more than 0 (a
    /// zero `BLOCK` waits forever). Claims and gauges are looked after between reads.
    pub block: Duration,
    /// How long an entry must sit unacknowledged in another consumer's hands before this one
    /// claims it (`XAUTOCLAIM`). Default 60 s. Entries this consumer is still waiting on are
    /// kept fresh (`XCLAIM … JUSTID`, every `claim_idle / 4`), so a long batch window, an open
    /// transaction or a backend outage does not make a live consumer's work look abandoned.
    pub claim_idle: Duration,
    /// Deliveries after which an entry goes to the dead-letter stream instead of the host.
    /// Default 5: an entry that crashed or stalled five consumers will crash a sixth.
    pub max_deliveries: u64,
    /// The dead-letter stream. Default `<stream>:dead`.
    pub dead_letter: String,
    /// Approximate cap on the dead-letter stream (`MAXLEN ~`). Default 100,000.
    pub dead_letter_maxlen: usize,
    /// Bytes of the payload copied into a dead letter. Default 64 KiB.
    pub dead_letter_payload_bytes: usize,
    /// Largest entry (all its fields and values) handed to the host; bigger ones are dead
    /// letters before they are decoded. Default 1 MiB (the host's own cap on one input,
    /// `EventLimits::max_input_bytes`, applies too).
    pub max_entry_bytes: usize,
    /// Entries submitted and not yet acknowledged. Default 10,000; reading pauses at the cap.
    /// An open transaction's entries count until their commit.
    pub max_in_flight: usize,
    /// How long shutdown waits for in-flight entries to be applied and acknowledged. Default
    /// 5 s; what is left stays pending and is read again (by this consumer or a claimer).
    pub drain_timeout: Duration,
    /// First and longest wait after a failure (Redis down, rate limit, backpressure); the
    /// wait doubles between them. Defaults 50 ms and 5 s.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl StreamConfig {
    /// A config with every default.
    pub fn new(url: &str, stream: &str, group: &str, consumer: &str) -> StreamConfig {
        StreamConfig {
            url: url.to_owned(),
            stream: stream.to_owned(),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            batch: 256,
            block: Duration::from_secs(1),
            claim_idle: Duration::from_secs(60),
            max_deliveries: 5,
            dead_letter: format!("{stream}:dead"),
            dead_letter_maxlen: 100_000,
            dead_letter_payload_bytes: 64 << 10,
            max_entry_bytes: 1 << 20,
            max_in_flight: 10_000,
            drain_timeout: Duration::from_secs(5),
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// Refuses a setting that cannot work, naming it.
    pub fn check(&self) -> Result<(), SourceError> {
        let refuse = |field: &'static str, message: &str| {
            Err(SourceError::Config {
                stream: self.stream.clone(),
                group: self.group.clone(),
                field,
                message: message.to_owned(),
            })
        };
        for (field, value) in [
            ("stream", &self.stream),
            ("group", &self.group),
            ("consumer", &self.consumer),
            ("dead_letter", &self.dead_letter),
        ] {
            if value.is_empty() {
                return refuse(field, "must not be empty");
            }
        }
        if self.dead_letter == self.stream {
            return refuse("dead_letter", "must differ from the stream it serves");
        }
        if self.batch == 0 {
            return refuse("batch", "must be at least 1");
        }
        if self.block.is_zero() {
            return refuse("block", "must be more than 0 (0 would wait forever)");
        }
        if self.claim_idle < Duration::from_millis(10) {
            return refuse("claim_idle", "must be at least 10 ms");
        }
        if self.max_deliveries == 0 {
            return refuse("max_deliveries", "must be at least 1");
        }
        if self.max_in_flight < self.batch {
            return refuse("max_in_flight", "must be at least `batch`");
        }
        if self.backoff.is_zero() || self.max_backoff < self.backoff {
            return refuse("backoff", "must be more than 0 and at most `max_backoff`");
        }
        Ok(())
    }
}

/// Why a stream source stopped. A Redis that is down is not one of them: the source waits
/// and reconnects, and what it read stays pending meanwhile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("stream `{stream}`, group `{group}`: setting `{field}`: {message}")]
    Config {
        stream: String,
        group: String,
        field: &'static str,
        message: String,
    },
    /// The URL does not parse (it is not repeated here: it may hold a password).
    #[error("stream `{stream}`, group `{group}`: the Redis URL is invalid: {source}")]
    Url {
        stream: String,
        group: String,
        #[source]
        source: redis::RedisError,
    },
    /// Redis refused to create the group for a reason waiting will not fix (the key holds
    /// something that is not a stream, say).
    #[error("stream `{stream}`, group `{group}`: cannot create the consumer group: {source}")]
    Group {
        stream: String,
        group: String,
        #[source]
        source: redis::RedisError,
    },
}
