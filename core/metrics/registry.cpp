#include "metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace rampart::metrics {
namespace {

// The series every label set past the cap is folded into, so a flood of
// distinct values (addresses, paths) cannot grow memory without bound.
constexpr std::string_view kOverflowLabel = "_other";

const char* type_name(Type t) {
    switch (t) {
        case Type::Counter: return "counter";
        case Type::Gauge: return "gauge";
        default: return "histogram";
    }
}

void append_number(std::string& out, double v) {
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    char buf[32];
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
        snprintf(buf, sizeof buf, "%.0f", v);
        out += buf;
        return;
    }
    // The fewest digits that read back as the same double, printed the way
    // Prometheus client libraries do (Go's 'g', -1): le="0.0005", not
    // le="0.00050000000000000001" or "5e-04" (dashboards and alerts match
    // bucket bounds as strings).
    int digits = 17;
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    if (ec == std::errc()) {
        digits = 0;
        for (const char* c = buf; c < end && *c != 'e'; ++c) digits += (*c >= '0' && *c <= '9') ? 1 : 0;
    }
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    out += buf;
}

void append_label_value(std::string& out, std::string_view v) {
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
}

void append_help(std::string& out, std::string_view help) {
    for (char c : help) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
}

// {a="1",b="2"} plus an optional extra label (le for buckets).
void append_labels(std::string& out, const std::vector<std::string>& names, const std::vector<std::string>& values,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
    if (names.empty() && extra_name.empty()) return;
    out += '{';
    bool first = true;
    for (size_t i = 0; i < names.size(); ++i) {
        if (!first) out += ',';
        first = false;
        out += names[i];
        out += "=\"";
        append_label_value(out, values[i]);
        out += '"';
    }
    if (!extra_name.empty()) {
        if (!first) out += ',';
        out += extra_name;
        out += "=\"";
        out += extra_value;
        out += '"';
    }
    out += '}';
}

// Length of the valid UTF-8 sequence at s[i], or 0 when none starts there
// (strict: no overlongs, surrogates or code points past U+10FFFF).
size_t utf8_sequence(std::string_view s, size_t i) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    if (c < 0x80) return 1;
    size_t len = (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
    if (len == 0 || i + len > s.size()) return 0;
    for (size_t k = 1; k < len; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) return 0;
    }
    unsigned char c1 = byte(i + 1);
    if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 > 0x8f)) {
        return 0;
    }
    return len;
}

// Prometheus refuses a whole scrape over one invalid UTF-8 byte, and label
// values come from plugins (paths, peers, reasons): replace bad bytes with
// U+FFFD when a series or help text is stored.
void assign_utf8(std::string& out, std::string_view s) {
    size_t i = 0;
    for (size_t n; i < s.size() && (n = utf8_sequence(s, i)) != 0;) i += n;
    out.assign(s.substr(0, i));
    while (i < s.size()) {
        size_t n = utf8_sequence(s, i);
        if (n == 0) {
            out += "\xef\xbf\xbd";
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
}

bool name_char(char c, bool first, bool colon_ok) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
    return alpha || (!first && c >= '0' && c <= '9');
}

}  // namespace

bool valid_metric_name(std::string_view name) {
    if (name.empty()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        if (!name_char(name[i], i == 0, true)) return false;
    }
    return true;
}

bool valid_label_name(std::string_view name) {
    if (name.empty() || name.substr(0, 2) == "__" || name == "le" || name == "quantile") return false;
    for (size_t i = 0; i < name.size(); ++i) {
        if (!name_char(name[i], i == 0, false)) return false;
    }
    return true;
}

Metric::Metric(Type type, std::string name, std::string_view help, std::vector<std::string> label_names,
               std::vector<double> buckets, size_t max_series)
    : type_(type),
      name_(std::move(name)),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)),
      max_series_(max_series) {
    assign_utf8(help_, help);
}

Series& Metric::series_for(LabelValues label_values) {
    // Fast path: a label set seen before, found from the caller's views
    // (stored values are the same bytes when they were valid UTF-8).
    if (label_values.size() == label_names_.size()) {
        auto found = series_.find(label_values);
        if (found != series_.end()) return found->second;
    }
    std::vector<std::string> key(label_names_.size());
    for (size_t i = 0; i < key.size() && i < label_values.size(); ++i) assign_utf8(key[i], label_values[i]);
    auto it = series_.find(key);
    if (it != series_.end()) return it->second;
    if (series_.size() >= max_series_) {
        std::fill(key.begin(), key.end(), std::string(kOverflowLabel));
        it = series_.find(key);
        if (it != series_.end()) return it->second;
    }
    Series& s = series_[key];
    if (type_ == Type::Histogram) s.bucket_counts.assign(buckets_.size(), 0);
    return s;
}

void Metric::add(LabelValues label_values, double delta) {
    if (type_ == Type::Histogram || (type_ == Type::Counter && !(delta >= 0))) return;
    series_for(label_values).value += delta;
}

void Metric::set(LabelValues label_values, double value) {
    if (type_ != Type::Gauge) return;
    series_for(label_values).value = value;
}

void Metric::observe(LabelValues label_values, double value) {
    if (type_ != Type::Histogram || std::isnan(value)) return;
    Series& s = series_for(label_values);
    auto it = std::lower_bound(buckets_.begin(), buckets_.end(), value);
    if (it != buckets_.end()) s.bucket_counts[static_cast<size_t>(it - buckets_.begin())]++;
    s.sum += value;
    s.count++;
}

double Metric::value(const std::vector<std::string>& label_values) const {
    auto it = series_.find(label_values);
    if (it == series_.end()) return 0;
    return type_ == Type::Histogram ? static_cast<double>(it->second.count) : it->second.value;
}

void Metric::render(std::string& out) const {
    out += "# HELP ";
    out += name_;
    out += ' ';
    append_help(out, help_);
    out += "\n# TYPE ";
    out += name_;
    out += ' ';
    out += type_name(type_);
    out += '\n';
    // A metric without labels is shown as 0 before its first update, so
    // dashboards see it exist.
    if (series_.empty() && label_names_.empty() && type_ != Type::Histogram) {
        out += name_;
        out += " 0\n";
        return;
    }
    for (const auto& [values, s] : series_) {
        if (type_ != Type::Histogram) {
            out += name_;
            append_labels(out, label_names_, values);
            out += ' ';
            append_number(out, s.value);
            out += '\n';
            continue;
        }
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= buckets_.size(); ++i) {
            std::string le = "+Inf";
            if (i < buckets_.size()) {
                cumulative += s.bucket_counts[i];
                le.clear();
                append_number(le, buckets_[i]);
            } else {
                cumulative = s.count;
            }
            out += name_;
            out += "_bucket";
            append_labels(out, label_names_, values, "le", le);
            out += ' ';
            append_number(out, static_cast<double>(cumulative));
            out += '\n';
        }
        out += name_;
        out += "_sum";
        append_labels(out, label_names_, values);
        out += ' ';
        append_number(out, s.sum);
        out += '\n';
        out += name_;
        out += "_count";
        append_labels(out, label_names_, values);
        out += ' ';
        append_number(out, static_cast<double>(s.count));
        out += '\n';
    }
}

Metric* Registry::add(Type type, std::string_view name, std::string_view help, const std::vector<std::string>& labels,
                      const std::vector<double>& buckets, std::string* error) {
    auto fail = [&](const std::string& why) -> Metric* {
        if (error) *error = std::string(name) + ": " + why;
        return nullptr;
    };
    if (!valid_metric_name(name)) return fail("invalid metric name");
    if (name.substr(0, 8) != "rampart_") return fail("metric names start with rampart_");
    bool total = name.size() > 6 && name.substr(name.size() - 6) == "_total";
    if (type == Type::Counter && !total) return fail("counter names end in _total");
    if (type != Type::Counter && total) return fail("only counters end in _total");
    if (labels.size() > kMaxLabels) return fail("more than 8 labels");
    for (auto l = labels.begin(); l != labels.end(); ++l) {
        if (!valid_label_name(*l)) return fail("invalid label name \"" + *l + "\"");
        // {a="1",a="2"} would make the whole exposition unparsable.
        if (std::find(labels.begin(), l, *l) != l) return fail("duplicate label name \"" + *l + "\"");
    }
    if (type == Type::Histogram) {
        // NaN passes the ordering checks below (it compares false), and the
        // +Inf bucket is always rendered: an explicit one would appear twice.
        if (std::any_of(buckets.begin(), buckets.end(), [](double b) { return !std::isfinite(b); })) {
            return fail("histogram buckets must be finite (+Inf is implicit)");
        }
        if (buckets.empty() || !std::is_sorted(buckets.begin(), buckets.end()) ||
            std::adjacent_find(buckets.begin(), buckets.end()) != buckets.end()) {
            return fail("histogram buckets must be non-empty and strictly increasing");
        }
    }
    auto it = metrics_.find(name);
    if (it != metrics_.end()) {
        Metric* m = it->second.get();
        if (m->type() == type && m->label_names() == labels && m->buckets() == buckets) return m;
        return fail("already registered with another type, labels or buckets");
    }
    // A histogram X also writes X_bucket, X_sum and X_count: another metric
    // with one of those names makes parsers reject the whole exposition.
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
        if (type == Type::Histogram && metrics_.count(std::string(name) + std::string(suffix)) != 0) {
            return fail("histogram series would clash with " + std::string(name) + std::string(suffix));
        }
        if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
            Metric* base = find(name.substr(0, name.size() - suffix.size()));
            if (base != nullptr && base->type() == Type::Histogram) {
                return fail("clashes with the series of histogram " + base->name());
            }
        }
    }
    auto metric = std::make_unique<Metric>(type, std::string(name), help, labels,
                                           type == Type::Histogram ? buckets : std::vector<double>{}, max_series_);
    Metric* raw = metric.get();
    metrics_.emplace(std::string(name), std::move(metric));
    return raw;
}

Metric* Registry::counter(std::string_view name, std::string_view help, const std::vector<std::string>& labels,
                          std::string* error) {
    return add(Type::Counter, name, help, labels, {}, error);
}

Metric* Registry::gauge(std::string_view name, std::string_view help, const std::vector<std::string>& labels,
                        std::string* error) {
    return add(Type::Gauge, name, help, labels, {}, error);
}

Metric* Registry::histogram(std::string_view name, std::string_view help, const std::vector<std::string>& labels,
                            const std::vector<double>& buckets, std::string* error) {
    return add(Type::Histogram, name, help, labels, buckets, error);
}

Metric* Registry::find(std::string_view name) const {
    auto it = metrics_.find(name);
    return it == metrics_.end() ? nullptr : it->second.get();
}

std::string Registry::render() const {
    std::string out;
    out.reserve(4096);
    for (const auto& [name, metric] : metrics_) metric->render(out);
    return out;
}

}  // namespace rampart::metrics
