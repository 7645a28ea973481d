//! The user function of the Nexmark suite's q14, as its Flink version
//! defines it (`com.github.nexmark.flink.udf.CountChar`): how many times a
//! character occurs in a string.

/// How many characters of `s` equal the first character of `c`; 0 for a
/// NULL `s` or an empty `c` (Flink's `CountChar` counts over a NULL string
/// as over an empty one).
#[eddy_udf::scalar]
pub fn count_char(s: Option<&str>, c: &str) -> i64 {
    let (Some(s), Some(c)) = (s, c.chars().next()) else {
        return 0;
    };
    s.chars().filter(|&x| x == c).count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_first_character_of_its_second_argument() {
        assert_eq!(count_char(Some("abcabc"), "c"), 2);
        assert_eq!(count_char(Some("abcabc"), "cz"), 2);
        assert_eq!(count_char(Some(""), "c"), 0);
        assert_eq!(count_char(None, "c"), 0);
        assert_eq!(count_char(Some("ccc"), ""), 0);
    }
}
