//! A seeded, deterministic corpus of developer memories.

pub const WORDS: &[&str] = &[
    "cache",
    "request",
    "timeout",
    "retry",
    "backoff",
    "database",
    "index",
    "query",
    "latency",
    "deploy",
    "rollback",
    "container",
    "kubernetes",
    "docker",
    "pipeline",
    "build",
    "compile",
    "linker",
    "memory",
    "thread",
    "mutex",
    "deadlock",
    "async",
    "await",
    "future",
    "socket",
    "connection",
    "pool",
    "schema",
    "migration",
    "column",
    "table",
    "replica",
    "primary",
    "shard",
    "partition",
    "queue",
    "consumer",
    "producer",
    "event",
    "stream",
    "batch",
    "worker",
    "scheduler",
    "cron",
    "token",
    "session",
    "cookie",
    "header",
    "proxy",
    "gateway",
    "router",
    "handler",
    "middleware",
    "logging",
    "metrics",
    "tracing",
    "alert",
    "dashboard",
    "config",
    "secret",
    "certificate",
    "upgrade",
    "version",
    "dependency",
    "package",
    "module",
    "function",
    "closure",
    "iterator",
    "allocation",
    "garbage",
    "collector",
    "heap",
    "stack",
    "pointer",
    "buffer",
    "overflow",
    "parser",
    "lexer",
    "compiler",
    "test",
    "fixture",
    "mock",
    "assertion",
    "coverage",
    "benchmark",
    "profile",
    "regression",
    "rust",
    "python",
    "typescript",
    "react",
    "postgres",
    "redis",
    "kafka",
    "nginx",
    "graphql",
    "grpc",
    "websocket",
    "the",
    "a",
    "of",
    "and",
    "with",
    "when",
    "after",
    "before",
    "in",
    "on",
    "fixed",
    "broke",
    "slow",
    "fast",
];

pub const TYPES: &[&str] = &[
    "task",
    "code_pattern",
    "problem",
    "solution",
    "project",
    "technology",
    "error",
    "fix",
    "command",
    "file_context",
    "workflow",
    "general",
    "conversation",
];

/// A word every memory contains, and rare words planted in one memory each.
pub const EVERYWHERE: &str = "memorandum";

/// A recall question of four of the corpus's common words, as the benchmark asks them.
pub fn question(rng: &mut Rng) -> String {
    format!(
        "how did we fix the {} {} with {}",
        rng.word(),
        rng.word(),
        rng.word()
    )
}

pub fn rare_word(i: usize) -> String {
    let letters = b"bcdfghjklmnpqrstvwxz";
    let mut n = i;
    let mut w = String::from("zq");
    for _ in 0..5 {
        w.push(letters[n % letters.len()] as char);
        n /= letters.len();
    }
    w
}

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn word(&mut self) -> &'static str {
        WORDS[self.below(WORDS.len())]
    }

    pub fn words(&mut self, n: usize) -> String {
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }
}

/// One generated memory.
pub struct Generated {
    pub memory_type: &'static str,
    pub title: String,
    pub content: String,
    pub tags: Vec<String>,
    pub importance: f64,
}

impl Generated {
    /// The memory as the backend takes it.
    pub fn to_new(&self) -> memorygraph::model::NewMemory {
        memorygraph::model::NewMemory::validate(
            self.memory_type,
            &self.title,
            &self.content,
            None,
            Some(&self.tags),
            Some(self.importance),
            None,
        )
        .expect("generated memories are valid")
    }

    /// The memory as `store_memory` takes it over MCP.
    pub fn store_arguments(&self) -> serde_json::Value {
        serde_json::json!({"type": self.memory_type, "title": self.title, "content": self.content, "tags": self.tags, "importance": self.importance})
    }
}

/// The `i`-th memory of the corpus: 50–400 words of content, 2–5 tags, every type.
pub fn memory(rng: &mut Rng, i: usize) -> Generated {
    let length = 50 + rng.below(351);
    let content = format!(
        "{} {} {} {}",
        rng.words(length / 2),
        EVERYWHERE,
        rare_word(i),
        rng.words(length - length / 2)
    );
    let tags = (0..2 + rng.below(4))
        .map(|_| rng.word().to_string())
        .collect();
    Generated {
        memory_type: TYPES[i % TYPES.len()],
        title: format!("{} {} {} #{i}", rng.word(), rng.word(), rng.word()),
        content,
        tags,
        importance: (rng.below(101) as f64) / 100.0,
    }
}

/// A word with one letter swapped with its neighbour.
pub fn typo(word: &str) -> String {
    let mut c: Vec<char> = word.chars().collect();
    if c.len() > 3 {
        c.swap(1, 2);
    }
    c.into_iter().collect()
}
