//! Removing a token its provider does not forward: the header, the query parameter or the
//! cookie it was found in.

use crate::config::Config;
use crate::request::{percent_decode, query_pairs, RequestView};
use crate::token::{FoundToken, TokenLocation, VerifiedToken};

/// When the provider does not forward its token, removes it from wherever it was found.
pub(super) fn strip_token(
    config: &Config,
    verified: &VerifiedToken,
    found: &FoundToken<'_>,
    request: &RequestView<'_>,
    remove: &mut Vec<String>,
    set: &mut Vec<(String, String)>,
) {
    let Some(provider) = config.providers.get(verified.provider()) else {
        return;
    };
    if provider.forward_token {
        return;
    }
    // A DPoP proof goes with its token: it is of no use upstream without it.
    if found
        .locations
        .iter()
        .any(|index| Some(*index) == config.dpop_location)
        && !remove.iter().any(|known| known == "dpop")
    {
        remove.push("dpop".to_owned());
    }
    for location in found
        .locations
        .iter()
        .filter_map(|index| config.locations.get(*index))
    {
        match location {
            TokenLocation::Header { name, .. } => {
                if !remove.contains(name) {
                    remove.push(name.clone());
                }
            }
            TokenLocation::Query { name } => {
                let raw = request.raw_path();
                if let Some((path, query)) = raw.split_once('?') {
                    let kept: Vec<&str> = query_pairs(query)
                        .filter(|(_, key, _)| percent_decode(key).as_deref() != Some(name.as_str()))
                        .map(|(pair, _, _)| pair)
                        .collect();
                    let rewritten = if kept.is_empty() {
                        path.to_owned()
                    } else {
                        format!("{path}?{}", kept.join("&"))
                    };
                    set.push((":path".to_owned(), rewritten));
                }
            }
            TokenLocation::Cookie { name } => {
                let kept: Vec<&str> = request
                    .cookie_pairs()
                    .filter(|pair| {
                        pair.split_once('=')
                            .is_none_or(|(key, _)| key.trim() != name)
                    })
                    .collect();
                if !remove.iter().any(|known| known == "cookie") {
                    remove.push("cookie".to_owned());
                }
                if !kept.is_empty() {
                    set.push(("cookie".to_owned(), kept.join("; ")));
                }
            }
        }
    }
}
