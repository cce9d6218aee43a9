#include "store/entry.h"

#include <cstring>
#include <new>

namespace rampart::store {

EntryPtr Entry::make(std::string_view value, uint64_t flags, uint64_t create_index, uint64_t modify_index) {
    // Values are at most Limits::kValue (512 KiB): the size fits in 32 bits.
    void* block = ::operator new(sizeof(Entry) + value.size());
    auto* e = new (block) Entry();  // NOLINT(cppcoreguidelines-owning-memory): EntryPtr owns it
    e->size_ = static_cast<uint32_t>(value.size());
    e->flags_ = flags;
    e->create_index_ = create_index;
    e->modify_index_ = modify_index;
    if (!value.empty()) std::memcpy(static_cast<char*>(block) + sizeof(Entry), value.data(), value.size());
    return EntryPtr(e);
}

void EntryPtr::release() {
    if (p_ == nullptr || p_->refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    p_->~Entry();
    ::operator delete(p_);
    p_ = nullptr;
}

}  // namespace rampart::store
