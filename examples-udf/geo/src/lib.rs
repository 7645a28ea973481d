//! Example UDFs: a geo-fence filter, a string filter and a scalar.

/// Whether a point lies inside the fence: a circle of 50 km around
/// Zurich (47.37 N, 8.54 E), by the haversine distance.
#[eddy_udf::filter]
pub fn geo_fence(lat: f64, lon: f64) -> bool {
    distance_km(lat, lon, 47.37, 8.54) <= 50.0
}

/// Whether a point lies in a latitude/longitude box around the Alps
/// (45–48 N, 5–11 E): the cheap kind of filter that runs on every row.
#[eddy_udf::filter]
pub fn in_region(lat: f64, lon: f64) -> bool {
    (45.0..=48.0).contains(&lat) && (5.0..=11.0).contains(&lon)
}

/// Great-circle distance in km.
pub fn distance_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    6371.0 * 2.0 * a.sqrt().asin()
}

/// Whether a channel is one of the mobile ones (case-insensitive).
#[eddy_udf::filter]
pub fn is_mobile(channel: &str) -> bool {
    matches!(channel.to_ascii_lowercase().as_str(), "apple" | "google")
}

/// The distance in km from a point to the fence's centre.
#[eddy_udf::scalar]
pub fn km_from_zurich(lat: f64, lon: f64) -> f64 {
    distance_km(lat, lon, 47.37, 8.54)
}

/// A label for a price in cents: "cheap", "fair" or "dear"; NULL stays NULL
/// only when the label would be unknown (a negative price).
#[eddy_udf::scalar]
pub fn price_band(cents: Option<i64>) -> Option<String> {
    match cents? {
        c if c < 0 => None,
        c if c < 1_000 => Some("cheap".to_string()),
        c if c < 100_000 => Some("fair".to_string()),
        _ => Some("dear".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_and_bands() {
        assert!(geo_fence(47.4, 8.5));
        assert!(!geo_fence(48.9, 2.35)); // Paris
        assert!(is_mobile("Apple") && !is_mobile("Baidu"));
        assert!(in_region(46.0, 7.0) && !in_region(44.9, 7.0));
        assert_eq!(price_band(Some(500)).as_deref(), Some("cheap"));
        assert_eq!(price_band(None), None);
        assert!((km_from_zurich(47.37, 8.54)).abs() < 1e-9);
    }
}
