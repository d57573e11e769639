#pragma once

#include <cstddef>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace mailroom {

namespace detail {

/// Describes one parsed step of a mask's JSON path (an implementation detail).
struct mask_step {
  /// Lists what a step can select.
  enum class kind { member, index, wildcard };
  kind what = kind::member; ///< Tells what the step selects.
  std::string name;         ///< Holds the member name, for `kind::member`.
  std::size_t index = 0;    ///< Holds the array index, for `kind::index`.
};

} // namespace detail

/// What a mask with JSON paths does with a payload that is not JSON (the
/// usual reason it was dead-lettered), where no path can be found.
enum class unparsable_policy {
  redact, ///< Replace it by its size and SHA-256 (the default).
  regex,  ///< Apply only the regular expression, keep the rest.
  keep,   ///< Keep it as it is (the regular expression still applies).
};

/// Hides sensitive parts of a payload before it leaves the engine.
///
/// The dead-letter actor runs every payload through a mask before writing it
/// to the dead-letter destination, so card numbers, e-mail addresses and the
/// like never reach a place with looser access rules than the source.
///
/// Two mechanisms apply, in this order:
///  1. JSON paths: when the payload parses as JSON, the value at each
///     configured path (whatever its type, object and array included) is
///     replaced by the replacement text as a JSON string, and the document is
///     re-serialised compactly. A path that matches nothing is ignored; a
///     payload in which nothing matched keeps its original text byte for byte.
///  2. A regular expression (ECMAScript grammar): every match in the resulting
///     text is replaced by the replacement text, taken literally (`$` has no
///     special meaning). This also covers payloads that are not JSON.
///
/// Path syntax, a subset of JSONPath:
///  - starts with `$` (the whole document);
///  - `.name` selects the member `name` of an object (any bytes other than
///    `.`, `[`, `]`, quotes and whitespace);
///  - `['name']` or `["name"]` selects a member whose name has other bytes;
///  - `[N]` selects element N (0-based) of an array;
///  - `[*]` or `.*` selects every element of an array or every member of an
///    object.
///
/// Examples: `$.card.number`, `$.items[*].ssn`, `$.rows[0]['e-mail']`.
///
/// A mask is immutable after construction; `apply` may be called from many
/// threads at once.
class payload_mask {
public:
  /// Builds a mask that changes nothing.
  payload_mask() = default;

  /// Builds a mask from JSON paths, a regular expression and the replacement.
  ///
  /// An empty `regex` means no regular-expression masking; an expression
  /// that matches the empty string is rejected (it would splice the
  /// replacement between every character). Throws std::invalid_argument
  /// naming the offending path or expression and what is wrong with it, e.g.
  /// "mask path 'card.number': must start with '$'", so configuration
  /// validation can report it as is.
  ///
  /// `on_unparsable` applies when JSON paths are configured and a payload
  /// does not parse: `redact` replaces it by
  /// `[redacted: not JSON, N bytes, sha256 <hex>]` (a card number in a
  /// truncated document must not reach the DLQ in clear).
  explicit payload_mask(std::vector<std::string> json_paths,
                        const std::string& regex = {}, std::string replacement = "***",
                        unparsable_policy on_unparsable = unparsable_policy::redact);

  /// Returns `payload` with the configured parts replaced.
  ///
  /// Never throws for any input: a payload that is not JSON follows the
  /// `on_unparsable` policy when paths are configured, else gets the regular
  /// expression only. Where masking cannot be done safely the
  /// whole payload is replaced by the replacement text rather than leaked:
  /// when the regular-expression engine fails (it can run out of resources
  /// on pathological input), or when JSON paths are configured and the
  /// payload nests arrays or objects more than 256 levels deep.
  std::string apply(const std::string& payload) const;

  /// Returns true when the mask changes nothing (no paths, no expression).
  bool empty() const { return paths_.empty() && !regex_; }

  /// Returns the paths the mask was built from, as given.
  const std::vector<std::string>& json_paths() const { return path_texts_; }

  /// Returns the replacement text.
  const std::string& replacement() const { return replacement_; }

  /// Returns `[redacted: not JSON, N bytes, sha256 <hex>]` for `payload`.
  static std::string redacted(const std::string& payload);

private:
  std::vector<std::string> path_texts_;
  std::vector<std::vector<detail::mask_step>> paths_;
  std::optional<std::regex> regex_;
  std::string replacement_ = "***";
  unparsable_policy on_unparsable_ = unparsable_policy::redact;
  std::string regex_format_; // replacement_ with `$` escaped for regex_replace
};

} // namespace mailroom
