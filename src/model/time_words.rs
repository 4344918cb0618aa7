//! Time in a question: English expressions such as "yesterday", "last week", "two months
//! ago", "since Monday", "in March", "on 2026-11-03" or "before June", read as a range of
//! instants in the user's time zone. Search and recall use the range as a filter on when a
//! memory was created and search the other words; the answer says how the expression was
//! read. Only the first expression of a question counts.

use chrono::{DateTime, Datelike, Days, Duration, Months, NaiveDate, TimeZone, Utc, Weekday};

/// An instant to answer "as of": what existed and was current then. Made only by
/// [`AsOf::parse`], so its text is always a UTC instant in one fixed format, which SQL can
/// hold as a literal.
#[derive(Debug, Clone, PartialEq)]
pub struct AsOf(String);

impl AsOf {
    /// An ISO 8601 date-time, or a date (meaning the end of that day, UTC).
    pub fn parse(raw: &str) -> Option<AsOf> {
        instant(raw, DayEdge::End).map(AsOf)
    }

    /// The instant as SQLite's day number, for comparisons.
    pub fn sql(&self) -> String {
        format!("julianday('{}')", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which instant of a day a bare date names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DayEdge {
    Start,
    End,
}

/// An ISO 8601 date-time, or a date (its start or its end, UTC), written in the one format
/// stored timestamps use, so SQLite compares them correctly; `None` for anything else.
pub fn instant(raw: &str, edge: DayEdge) -> Option<String> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(super::iso_from(t.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    Some(match edge {
        DayEdge::Start => format!("{day}T00:00:00.000000+00:00"),
        DayEdge::End => format!("{day}T23:59:59.999999+00:00"),
    })
}

/// An expression found in a question and the range it names.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeRange {
    /// The words as written in the question.
    pub phrase: String,
    /// Created at or after (inclusive); `None`: no lower bound.
    pub from: Option<DateTime<Utc>>,
    /// Created before (exclusive); `None`: no upper bound.
    pub until: Option<DateTime<Utc>>,
    /// How it was read, in words: "from 2026-11-23 to 2026-11-29".
    pub reading: String,
}

/// A span of whole local days: `[first, after)`.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: NaiveDate,
    after: NaiveDate,
}

/// The first time expression in `question`, read against `now`, and the question without it.
pub fn read<Tz: TimeZone>(question: &str, now: &DateTime<Tz>) -> Option<(TimeRange, String)> {
    let words = words_of(question);
    let lower: Vec<String> = words.iter().map(|(w, _, _)| w.to_lowercase()).collect();
    let today = now.date_naive();
    for start in 0..words.len() {
        if let Some((taken, range)) = expression(&lower[start..], today) {
            let (from_byte, to_byte) = (words[start].1, words[start + taken - 1].2);
            let phrase = question[from_byte..to_byte].to_string();
            let rest = format!("{} {}", &question[..from_byte], &question[to_byte..]);
            let rest = rest.split_whitespace().collect::<Vec<_>>().join(" ");
            let zone = now.timezone();
            let instant = |d: NaiveDate| local_midnight(&zone, d);
            let (from, until, reading) = match range {
                Range::Days(d) => (
                    Some(instant(d.first)),
                    Some(instant(d.after)),
                    if d.after == d.first + Days::new(1) {
                        format!("on {}", d.first)
                    } else {
                        format!("from {} to {}", d.first, d.after - Days::new(1))
                    },
                ),
                Range::Since(d) => (Some(instant(d)), None, format!("since {d}")),
                Range::Before(d) => (None, Some(instant(d)), format!("before {d}")),
            };
            let range = TimeRange {
                phrase,
                from,
                until,
                reading,
            };
            return Some((range, rest));
        }
    }
    None
}

/// What an expression names.
enum Range {
    Days(Span),
    Since(NaiveDate),
    Before(NaiveDate),
}

/// The words of a question with their byte spans.
fn words_of(text: &str) -> Vec<(&str, usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (at, c) in text.char_indices() {
        let part = c.is_alphanumeric() || c == '-';
        match (part, start) {
            (true, None) => start = Some(at),
            (false, Some(s)) => {
                out.push((&text[s..at], s, at));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((&text[s..], s, text.len()));
    }
    out
}

/// An expression at the start of `w`: how many words it takes, and its range.
fn expression(w: &[String], today: NaiveDate) -> Option<(usize, Range)> {
    let first = w.first()?.as_str();
    let second = w.get(1).map(String::as_str);
    // "the day before yesterday" names a day, not everything before yesterday.
    if first == "day"
        && second == Some("before")
        && w.get(2).map(String::as_str) == Some("yesterday")
    {
        let day = today.checked_sub_days(Days::new(2))?;
        return Some((
            3,
            Range::Days(Span {
                first: day,
                after: day + Days::new(1),
            }),
        ));
    }
    match first {
        "since" | "after" | "before" | "until" => {
            let (taken, days) = point(&w[1..], today, false)?;
            let range = match first {
                "since" => Range::Since(days.first),
                "after" => Range::Since(days.after),
                _ => Range::Before(days.first),
            };
            return Some((taken + 1, range));
        }
        "in" | "during" | "on" => {
            let (taken, days) = point(&w[1..], today, false)?;
            return Some((taken + 1, Range::Days(days)));
        }
        "last" | "past" => {
            // "last 3 days": those days up to and including today; "last 2 weeks": from
            // the same day two weeks ago.
            if let (Some(n), Some(unit)) =
                (second.and_then(number), w.get(2).and_then(|u| unit_of(u)))
            {
                let first = match unit {
                    Unit::Day => {
                        today.checked_sub_days(Days::new(u64::from(n.saturating_sub(1))))?
                    }
                    _ => back(today, n, unit)?,
                };
                let days = Span {
                    first,
                    after: today + Days::new(1),
                };
                return Some((3, Range::Days(days)));
            }
        }
        _ => {}
    }
    if let Some(n) = number(first)
        && let Some(unit) = w.get(1).and_then(|u| unit_of(u))
        && w.get(2).map(String::as_str) == Some("ago")
    {
        let day = back(today, n, unit)?;
        return Some((3, Range::Days(period(day, unit))));
    }
    point(w, today, true).map(|(taken, days)| (taken, Range::Days(days)))
}

/// A day, week, month or year named at the start of `w`. `bare`: with no word before it
/// such as "in" or "since", where a weekday, a month or a year alone is more likely meant
/// otherwise ("may", "2025" in "python 2025", "monday standup") and is not taken.
fn point(w: &[String], today: NaiveDate, bare: bool) -> Option<(usize, Span)> {
    let first = w.first()?.as_str();
    let second = w.get(1).map(String::as_str);
    let day = |d: NaiveDate| Span {
        first: d,
        after: d + Days::new(1),
    };
    match first {
        "today" => return Some((1, day(today))),
        "yesterday" => return Some((1, day(today - Days::new(1)))),
        "this" | "last" => {
            let unit = second.and_then(unit_of);
            let back_by = u32::from(first == "last");
            if let Some(unit) = unit {
                let d = back(today, back_by, unit)?;
                return Some((2, period(d, unit)));
            }
            if let Some(weekday) = second.and_then(weekday_of) {
                return Some((2, day(previous(today, weekday, true))));
            }
        }
        _ => {}
    }
    if let Ok(d) = NaiveDate::parse_from_str(first, "%Y-%m-%d") {
        return Some((1, day(d)));
    }
    if bare {
        return None;
    }
    if let Some(weekday) = weekday_of(first) {
        return Some((1, day(previous(today, weekday, false))));
    }
    if let Some(month) = month_of(first) {
        if let Some(year) = second.and_then(year_of) {
            return Some((2, month_days(year, month)?));
        }
        let this_year = month_days(today.year(), month)?;
        let days = if this_year.first > today {
            month_days(today.year() - 1, month)?
        } else {
            this_year
        };
        return Some((1, days));
    }
    if let Some(year) = year_of(first) {
        let first = NaiveDate::from_ymd_opt(year, 1, 1)?;
        return Some((
            1,
            Span {
                first,
                after: NaiveDate::from_ymd_opt(year + 1, 1, 1)?,
            },
        ));
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Day,
    Week,
    Month,
    Year,
}

fn unit_of(word: &str) -> Option<Unit> {
    match word {
        "day" | "days" => Some(Unit::Day),
        "week" | "weeks" => Some(Unit::Week),
        "month" | "months" => Some(Unit::Month),
        "year" | "years" => Some(Unit::Year),
        _ => None,
    }
}

fn number(word: &str) -> Option<u32> {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    match word {
        "a" | "an" => Some(1),
        _ => word
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 1000)
            .or_else(|| WORDS.iter().position(|w| *w == word).map(|n| n as u32)),
    }
}

/// A day `n` units before `today`.
fn back(today: NaiveDate, n: u32, unit: Unit) -> Option<NaiveDate> {
    match unit {
        Unit::Day => today.checked_sub_days(Days::new(u64::from(n))),
        Unit::Week => today.checked_sub_days(Days::new(7 * u64::from(n))),
        Unit::Month => today.checked_sub_months(Months::new(n)),
        Unit::Year => today.checked_sub_months(Months::new(12 * n)),
    }
}

/// The day, week (Monday to Sunday), month or year holding `day`.
fn period(day: NaiveDate, unit: Unit) -> Span {
    match unit {
        Unit::Day => Span {
            first: day,
            after: day + Days::new(1),
        },
        Unit::Week => {
            let first = day - Days::new(u64::from(day.weekday().num_days_from_monday()));
            Span {
                first,
                after: first + Days::new(7),
            }
        }
        Unit::Month => month_days(day.year(), day.month()).expect("a real month"),
        Unit::Year => Span {
            first: NaiveDate::from_ymd_opt(day.year(), 1, 1).expect("a real year"),
            after: NaiveDate::from_ymd_opt(day.year() + 1, 1, 1).expect("a real year"),
        },
    }
}

fn month_days(year: i32, month: u32) -> Option<Span> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    Some(Span {
        first,
        after: first.checked_add_months(Months::new(1))?,
    })
}

fn weekday_of(word: &str) -> Option<Weekday> {
    match word {
        "monday" => Some(Weekday::Mon),
        "tuesday" => Some(Weekday::Tue),
        "wednesday" => Some(Weekday::Wed),
        "thursday" => Some(Weekday::Thu),
        "friday" => Some(Weekday::Fri),
        "saturday" => Some(Weekday::Sat),
        "sunday" => Some(Weekday::Sun),
        _ => None,
    }
}

fn month_of(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    MONTHS.iter().position(|m| *m == word).map(|i| i as u32 + 1)
}

fn year_of(word: &str) -> Option<i32> {
    (word.len() == 4)
        .then(|| word.parse::<i32>().ok())
        .flatten()
        .filter(|y| (1970..=2200).contains(y))
}

/// The most recent `weekday` up to today (`strictly`: before today).
fn previous(today: NaiveDate, weekday: Weekday, strictly: bool) -> NaiveDate {
    let mut back =
        (7 + today.weekday().num_days_from_monday() - weekday.num_days_from_monday()) % 7;
    if back == 0 && strictly {
        back = 7;
    }
    today - Days::new(u64::from(back))
}

/// Midnight at the start of `day` in `zone`, as an instant (the earliest, where a clock
/// change skips or repeats it).
fn local_midnight<Tz: TimeZone>(zone: &Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    match zone.from_local_datetime(&midnight).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => (zone
            .from_local_datetime(&(midnight + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc)))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    /// Wednesday 2 December 2026, 15:00, one hour east of UTC.
    fn now() -> DateTime<FixedOffset> {
        FixedOffset::east_opt(3600)
            .unwrap()
            .with_ymd_and_hms(2026, 12, 2, 15, 0, 0)
            .unwrap()
    }

    /// The local dates of a reading: first day and the day after the last, or "-".
    fn read_as(question: &str) -> (String, String, String, String) {
        let (range, rest) =
            read(question, &now()).unwrap_or_else(|| panic!("{question}: not read"));
        let day = |t: Option<DateTime<Utc>>| {
            t.map_or("-".to_string(), |t| {
                t.with_timezone(&now().timezone())
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
        };
        (range.phrase, day(range.from), day(range.until), rest)
    }

    /// Each question read as (phrase, from, until).
    fn read_all_as(cases: &[(&str, &str, &str, &str)]) {
        for (question, phrase, from, until) in cases {
            let (p, f, u, _) = read_as(question);
            assert_eq!(
                (p.as_str(), f.as_str(), u.as_str()),
                (*phrase, *from, *until),
                "{question}"
            );
        }
    }

    #[test]
    fn relative_expressions() {
        let cases = [
            (
                "what did we decide yesterday",
                "yesterday",
                "2026-12-01 00:00",
                "2026-12-02 00:00",
            ),
            (
                "what broke the day before yesterday",
                "day before yesterday",
                "2026-11-30 00:00",
                "2026-12-01 00:00",
            ),
            (
                "errors today",
                "today",
                "2026-12-02 00:00",
                "2026-12-03 00:00",
            ),
            (
                "what did we decide last week about the retry policy",
                "last week",
                "2026-11-23 00:00",
                "2026-11-30 00:00",
            ),
            (
                "fixes this week",
                "this week",
                "2026-11-30 00:00",
                "2026-12-07 00:00",
            ),
            (
                "deploys last month",
                "last month",
                "2026-11-01 00:00",
                "2026-12-01 00:00",
            ),
            (
                "the outage two months ago",
                "two months ago",
                "2026-10-01 00:00",
                "2026-11-01 00:00",
            ),
            (
                "3 days ago",
                "3 days ago",
                "2026-11-29 00:00",
                "2026-11-30 00:00",
            ),
            (
                "a week ago",
                "a week ago",
                "2026-11-23 00:00",
                "2026-11-30 00:00",
            ),
            (
                "what changed since Monday",
                "since Monday",
                "2026-11-30 00:00",
                "-",
            ),
            (
                "decisions this year",
                "this year",
                "2026-01-01 00:00",
                "2027-01-01 00:00",
            ),
            (
                "incidents last year",
                "last year",
                "2025-01-01 00:00",
                "2026-01-01 00:00",
            ),
            (
                "notes from last Friday",
                "last Friday",
                "2026-11-27 00:00",
                "2026-11-28 00:00",
            ),
            (
                "the last 3 days of work",
                "last 3 days",
                "2026-11-30 00:00",
                "2026-12-03 00:00",
            ),
        ];
        read_all_as(&cases);
    }

    #[test]
    fn absolute_expressions() {
        let cases = [
            (
                "the migration in March",
                "in March",
                "2026-03-01 00:00",
                "2026-04-01 00:00",
            ),
            (
                "the migration in March 2025",
                "in March 2025",
                "2025-03-01 00:00",
                "2025-04-01 00:00",
            ),
            (
                "what broke on 2026-11-03",
                "on 2026-11-03",
                "2026-11-03 00:00",
                "2026-11-04 00:00",
            ),
            ("before June", "before June", "-", "2026-06-01 00:00"),
            ("after October", "after October", "2026-11-01 00:00", "-"),
            (
                "plans in 2025",
                "in 2025",
                "2025-01-01 00:00",
                "2026-01-01 00:00",
            ),
            (
                "2026-11-03 deploy",
                "2026-11-03",
                "2026-11-03 00:00",
                "2026-11-04 00:00",
            ),
            // A month not come yet this year is last year's.
            (
                "the freeze in December",
                "in December",
                "2026-12-01 00:00",
                "2027-01-01 00:00",
            ),
        ];
        read_all_as(&cases);
        let (_, from, _, _) = read_as("since January");
        assert_eq!(from, "2026-01-01 00:00");
    }

    #[test]
    fn the_words_searched_are_the_others() {
        let (_, _, _, rest) = read_as("what did we decide last week about the retry policy");
        assert_eq!(rest, "what did we decide about the retry policy");
    }

    #[test]
    fn as_of_reads_a_date_as_its_end_and_a_time_as_itself() {
        assert_eq!(
            AsOf::parse("2026-03-01").unwrap().as_str(),
            "2026-03-01T23:59:59.999999+00:00"
        );
        assert_eq!(
            AsOf::parse("2026-03-01T10:00:00+02:00").unwrap().as_str(),
            "2026-03-01T08:00:00.000000+00:00"
        );
        assert!(AsOf::parse("March").is_none());
        assert!(AsOf::parse("2026-03-01'; DROP TABLE nodes; --").is_none());
    }

    #[test]
    fn a_question_without_time_is_left_alone() {
        for question in [
            "retry policy",
            "may the worker restart",
            "python 2025 upgrade",
            "monday standup notes",
            "the last step of the deploy",
            "in the worker",
            "since the cache",
        ] {
            assert!(read(question, &now()).is_none(), "{question}");
        }
    }
}
