#pragma once

// A settings struct of a kind the configuration model does not know at
// compile time (the settings of a registered transport), with its schema.

#include <memory>
#include <vector>

#include "core/settings_schema.hpp"

namespace mailroom {

/// One settings struct, type-erased, with the keys that describe it.
class settings_box {
public:
  virtual ~settings_box() = default;

  /// Returns the struct.
  virtual void* data() = 0;

  /// Returns the struct.
  virtual const void* data() const = 0;

  /// Returns its keys.
  virtual const std::vector<setting>& keys() const = 0;

  /// Returns the problems its own rules find.
  virtual std::vector<setting_problem> check() const = 0;

  /// Returns a copy.
  virtual std::unique_ptr<settings_box> clone() const = 0;
};

/// A settings_box holding an `S` described by `schema`.
template <class S> class typed_settings_box final : public settings_box {
public:
  /// Holds `value` (defaults, unless given), described by `schema`.
  explicit typed_settings_box(const settings_schema<S>& schema, S value = {})
      : schema_(schema), value_(std::move(value)) {}

  void* data() override { return &value_; }
  const void* data() const override { return &value_; }
  const std::vector<setting>& keys() const override { return schema_.keys(); }
  std::vector<setting_problem> check() const override { return schema_.check(value_); }
  std::unique_ptr<settings_box> clone() const override {
    return std::make_unique<typed_settings_box>(schema_, value_);
  }

  /// Returns the struct.
  S& value() { return value_; }

  /// Returns the struct.
  const S& value() const { return value_; }

private:
  const settings_schema<S>& schema_;
  S value_;
};

} // namespace mailroom
