// The byte encoding of the state's snapshot sections (KV, catalog, tokens):
// LEB128 varints and length-prefixed bytes. Reading fails stickily: after
// the first problem every read returns a zero value and ok() is false, so a
// parser checks once at the end instead of after every field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rampart::store {

class ByteOut {
public:
    void u8(uint8_t v) { s_.push_back(static_cast<char>(v)); }
    void varint(uint64_t v) {
        while (v >= 0x80) {
            u8(static_cast<uint8_t>(v | 0x80));
            v >>= 7;
        }
        u8(static_cast<uint8_t>(v));
    }
    void bytes(std::string_view b) {
        varint(b.size());
        s_.append(b);
    }
    void raw(std::string_view b) { s_.append(b); }
    std::string take() { return std::move(s_); }

private:
    std::string s_;
};

class ByteIn {
public:
    explicit ByteIn(std::string_view s) : s_(s) {}
    bool ok() const { return ok_; }
    void invalidate() { ok_ = false; }
    bool at_end() const { return pos_ == s_.size(); }
    uint8_t u8() {
        if (!ok_ || pos_ >= s_.size()) return fail();
        return static_cast<uint8_t>(s_[pos_++]);
    }
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64 && ok_; shift += 7) {
            uint8_t b = u8();
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return ok_ ? v : 0;
        }
        return fail();
    }
    std::string bytes(size_t max) {
        uint64_t n = varint();
        if (!ok_ || n > max || n > s_.size() - pos_) return fail(), std::string();
        std::string out(s_.substr(pos_, n));
        pos_ += n;
        return out;
    }
    std::string_view raw(size_t n) {
        if (!ok_ || n > s_.size() - pos_) return fail(), std::string_view();
        std::string_view out = s_.substr(pos_, n);
        pos_ += n;
        return out;
    }
    // A count of items of at least one byte each (bounds what follows).
    uint64_t count(uint64_t max) {
        uint64_t n = varint();
        if (n > max || n > s_.size() - pos_) ok_ = false;
        return ok_ ? n : 0;
    }

private:
    uint8_t fail() {
        ok_ = false;
        return 0;
    }
    std::string_view s_;
    size_t pos_ = 0;
    bool ok_ = true;
};

}  // namespace rampart::store
