#include "core/step_scope.hpp"

#include "core/step_journal.hpp"

namespace mailroom {

std::string step_scope::step(const std::string& name, const forward_fn& forward) {
  auto id = take_id();
  if (const auto* saved = journal_->replay(id, 's', name)) {
    return *saved;
  }
  journal_->check_cancelled();
  auto result = forward();
  journal_->record(id, 's', name, result);
  return result;
}

std::string step_scope::step(const std::string& name, const forward_fn& forward,
                             compensate_fn compensate) {
  auto id = next_id();
  auto result = step(name, forward);
  journal_->add_compensation(id, name, std::move(compensate), result);
  return result;
}

step_scope step_scope::child(const std::string& name) {
  auto id = take_id();
  if (journal_->replay(id, 'c', name) == nullptr) {
    journal_->record(id, 'c', name, {});
  }
  return step_scope{*journal_, id + "/"};
}

std::vector<std::string> step_scope::rollback() { return journal_->compensate(prefix_); }

io_result step_scope::flush() { return journal_->flush(); }

} // namespace mailroom
