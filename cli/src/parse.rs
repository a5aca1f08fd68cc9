//! Command-line value parsers: CPU cores, memory sizes, durations and `KEY=VALUE` pairs.
//!
//! Each returns `Result<_, String>` so clap can use it as a `value_parser` and report a
//! bad value as a usage error (exit code 2) naming the flag. They check syntax only;
//! the scheduler owns the rules (limits, non-zero, ...) and names the field it rejects.

use std::time::Duration;

const MIB_PER_GIB: u64 = 1024;
const MIB_PER_TIB: u64 = 1024 * 1024;

/// A `KEY=VALUE` argument (`--tag`, `--hp`, `--dataset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub key: String,
    pub value: String,
}

/// Splits at the first `=`: values may contain `=` (and dataset paths `:`), keys may not.
/// An empty value (`k=`) is allowed, a missing `=` is not: `--tag k` is more likely a typo
/// than a tag with an empty value.
pub fn pair(s: &str) -> Result<Pair, String> {
    let (key, value) = s.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got '{s}'"))?;
    if key.is_empty() {
        return Err(format!("the key before '=' must not be empty in '{s}'"));
    }
    Ok(Pair { key: key.into(), value: value.into() })
}

/// CPU cores as millicores: `4` → 4000, `0.5` → 500, or Kubernetes-style `500m` → 500.
pub fn cpu_millis(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if let Some(millis) = s.strip_suffix('m') {
        return millis.parse().map_err(|_| format!("'{s}' is not a whole number of millicores"));
    }
    scaled(s, 1000).map_err(|e| match e {
        Scale::NotANumber => format!("'{s}' is not a number of cores (e.g. 4, 0.5 or 500m)"),
        Scale::Fraction => format!("'{s}' is finer than a millicore (at most 3 decimals)"),
    })
}

/// Memory as MiB: `16Gi`/`16GiB` → 16384, `512Mi`/`512MiB` → 512, `1Ti`, and a plain
/// number means MiB. Decimal units (`G`, `GB`) are refused rather than guessed at, since
/// confusing GB with GiB silently changes the size by 7%.
pub fn memory_mib(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let mib_per_unit = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "mi" | "mib" => 1,
        "gi" | "gib" => MIB_PER_GIB,
        "ti" | "tib" => MIB_PER_TIB,
        other => return Err(format!("unknown memory unit '{other}' in '{s}': use Mi, Gi or Ti (or MiB, GiB, TiB)")),
    };
    scaled(number, mib_per_unit).map_err(|e| match e {
        Scale::NotANumber => format!("'{s}' is not a memory size (e.g. 16Gi, 512Mi or 2048)"),
        Scale::Fraction => format!("'{s}' is not a whole number of MiB"),
    })
}

/// A human duration for `--timeout`: `10s`, `500ms`, `1m30s`.
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("'{s}' is not a duration (e.g. 10s, 500ms): {e}"))
}

/// A maximum training time in whole minutes: `90m`, `2h`, `1h30m`, or a plain number of
/// minutes.
pub fn minutes(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let total = match s.parse::<u64>() {
        Ok(m) => m,
        Err(_) => {
            let d = humantime::parse_duration(s)
                .map_err(|e| format!("'{s}' is not a duration (e.g. 90m, 2h, 1h30m): {e}"))?;
            if d.subsec_nanos() != 0 || d.as_secs() % 60 != 0 {
                return Err(format!("'{s}' is not a whole number of minutes"));
            }
            d.as_secs() / 60
        }
    };
    u32::try_from(total).map_err(|_| format!("'{s}' is too long"))
}

/// Why a decimal could not be scaled to a whole number of the smaller unit.
enum Scale {
    NotANumber,
    Fraction,
}

/// `number × scale` computed exactly (no floating point: `0.1 × 1000` must be 100, not
/// 99), failing when the result is not whole.
fn scaled(number: &str, scale: u64) -> Result<u64, Scale> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |p: &str| p.chars().all(|c| c.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return Err(Scale::NotANumber);
    }
    // Leading/trailing zeros do not change the value; dropping them keeps the
    // arithmetic below within u128 for any sensible input.
    let frac = frac.trim_end_matches('0');
    let int = int.trim_start_matches('0');
    if int.len() + frac.len() > 30 {
        return Err(Scale::NotANumber);
    }
    let mantissa = format!("{int}{frac}");
    // All digits were zeros (`0`, `0.00`).
    let digits: u128 = if mantissa.is_empty() { 0 } else { mantissa.parse().map_err(|_| Scale::NotANumber)? };
    let denominator = 10u128.pow(frac.len() as u32);
    let product = digits * u128::from(scale);
    if !product.is_multiple_of(denominator) {
        return Err(Scale::Fraction);
    }
    u64::try_from(product / denominator).map_err(|_| Scale::NotANumber)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_accepts_cores_fractions_and_millicores() {
        assert_eq!(cpu_millis("4"), Ok(4000));
        assert_eq!(cpu_millis("0.5"), Ok(500));
        assert_eq!(cpu_millis(".25"), Ok(250));
        assert_eq!(cpu_millis("1.125"), Ok(1125));
        assert_eq!(cpu_millis("0.1"), Ok(100));
        assert_eq!(cpu_millis("500m"), Ok(500));
        assert_eq!(cpu_millis("0"), Ok(0));
    }

    #[test]
    fn cpu_rejects_garbage_and_sub_millicores() {
        assert!(cpu_millis("").is_err());
        assert!(cpu_millis(".").is_err());
        assert!(cpu_millis("four").is_err());
        assert!(cpu_millis("-1").is_err());
        assert!(cpu_millis("1.5m").is_err());
        assert!(cpu_millis("0.0005").unwrap_err().contains("millicore"));
    }

    #[test]
    fn memory_accepts_binary_units_and_plain_mib() {
        assert_eq!(memory_mib("16Gi"), Ok(16 * 1024));
        assert_eq!(memory_mib("16GiB"), Ok(16 * 1024));
        assert_eq!(memory_mib("16gib"), Ok(16 * 1024));
        assert_eq!(memory_mib("512Mi"), Ok(512));
        assert_eq!(memory_mib("512MiB"), Ok(512));
        assert_eq!(memory_mib("2048"), Ok(2048));
        assert_eq!(memory_mib("1.5Gi"), Ok(1536));
        assert_eq!(memory_mib("1Ti"), Ok(1024 * 1024));
        assert_eq!(memory_mib("8 Gi"), Ok(8 * 1024));
    }

    #[test]
    fn memory_rejects_decimal_units_and_fractions_of_mib() {
        assert!(memory_mib("16G").unwrap_err().contains("unknown memory unit"));
        assert!(memory_mib("16GB").is_err());
        assert!(memory_mib("Gi").is_err());
        assert!(memory_mib("0.5Mi").unwrap_err().contains("whole number of MiB"));
        assert!(memory_mib("1.2.3Gi").is_err());
        assert!(memory_mib("99999999999999999999999Ti").is_err());
    }

    #[test]
    fn minutes_accepts_human_durations_and_plain_minutes() {
        assert_eq!(minutes("90m"), Ok(90));
        assert_eq!(minutes("2h"), Ok(120));
        assert_eq!(minutes("1h30m"), Ok(90));
        assert_eq!(minutes("1h 30m"), Ok(90));
        assert_eq!(minutes("45"), Ok(45));
        assert_eq!(minutes("1d"), Ok(1440));
    }

    #[test]
    fn minutes_rejects_seconds_and_nonsense() {
        assert!(minutes("90s").unwrap_err().contains("whole number of minutes"));
        assert!(minutes("1m30s").is_err());
        assert!(minutes("soon").is_err());
        assert!(minutes("").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(duration("10").is_err());
    }

    #[test]
    fn pairs_split_at_the_first_equals_sign() {
        assert_eq!(pair("lr=0.1"), Ok(Pair { key: "lr".into(), value: "0.1".into() }));
        assert_eq!(pair("k="), Ok(Pair { key: "k".into(), value: String::new() }));
        assert_eq!(
            pair("train=nas://nas1:/data?x=1"),
            Ok(Pair { key: "train".into(), value: "nas://nas1:/data?x=1".into() })
        );
        assert!(pair("novalue").unwrap_err().contains("KEY=VALUE"));
        assert!(pair("=v").is_err());
    }
}
