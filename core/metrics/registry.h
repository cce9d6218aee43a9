// The metric registry: counters, gauges and histograms with labels, a
// cardinality cap per metric, and rendering in the Prometheus text format.
// It lives in the core so every part of the daemon (and every plugin,
// through the host services) can count, whether or not the metrics plugin
// that serves /metrics is loaded.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rampart::metrics {

enum class Type { Counter, Gauge, Histogram };

// Values a metric holds for one set of label values.
struct Series {
    double value = 0;                     // counter / gauge
    std::vector<uint64_t> bucket_counts;  // histogram: one per bucket (not cumulative)
    double sum = 0;
    uint64_t count = 0;
};

// Orders label sets, and finds a stored set (strings) from views of the
// caller's values without building strings: the per-request path.
struct LabelsLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
        return std::lexicographical_compare(std::begin(a), std::end(a), std::begin(b), std::end(b),
                                            [](std::string_view x, std::string_view y) { return x < y; });
    }
};

using LabelValues = std::span<const std::string_view>;

class Metric {
public:
    Metric(Type type, std::string name, std::string_view help, std::vector<std::string> label_names,
           std::vector<double> buckets, size_t max_series);

    // `label_values` must have one entry per label name (extra are ignored,
    // missing are ""). Counters ignore negative deltas.
    void add(LabelValues label_values, double delta);
    void set(LabelValues label_values, double value);
    void observe(LabelValues label_values, double value);
    // The same, for brace lists: m->add({"success"}, 1).
    void add(std::initializer_list<std::string_view> v, double delta) { add(LabelValues(v.begin(), v.size()), delta); }
    void set(std::initializer_list<std::string_view> v, double value) { set(LabelValues(v.begin(), v.size()), value); }
    void observe(std::initializer_list<std::string_view> v, double value) {
        observe(LabelValues(v.begin(), v.size()), value);
    }

    Type type() const { return type_; }
    const std::string& name() const { return name_; }
    const std::vector<std::string>& label_names() const { return label_names_; }
    const std::vector<double>& buckets() const { return buckets_; }
    size_t series_count() const { return series_.size(); }
    // Drop every series (a per-peer gauge on a node that stopped leading).
    void clear() { series_.clear(); }
    // The value of one series (tests); 0 when absent.
    double value(const std::vector<std::string>& label_values) const;
    void render(std::string& out) const;

private:
    Series& series_for(LabelValues label_values);

    Type type_;
    std::string name_;
    std::string help_;
    std::vector<std::string> label_names_;
    std::vector<double> buckets_;
    size_t max_series_;
    std::map<std::vector<std::string>, Series, LabelsLess> series_;
};

class Registry {
public:
    static constexpr size_t kDefaultMaxSeries = 1000;
    static constexpr size_t kMaxLabels = 8;

    explicit Registry(size_t max_series = kDefaultMaxSeries) : max_series_(max_series) {}

    // Register (or find, when the shape matches) a metric; nullptr with
    // *error set when the name, labels or shape are invalid.
    Metric* counter(std::string_view name, std::string_view help, const std::vector<std::string>& labels,
                    std::string* error = nullptr);
    Metric* gauge(std::string_view name, std::string_view help, const std::vector<std::string>& labels,
                  std::string* error = nullptr);
    Metric* histogram(std::string_view name, std::string_view help, const std::vector<std::string>& labels,
                      const std::vector<double>& buckets, std::string* error = nullptr);

    Metric* find(std::string_view name) const;
    // The whole registry, metrics in name order.
    std::string render() const;

private:
    Metric* add(Type type, std::string_view name, std::string_view help, const std::vector<std::string>& labels,
                const std::vector<double>& buckets, std::string* error);

    size_t max_series_;
    std::map<std::string, std::unique_ptr<Metric>, std::less<>> metrics_;
};

// Prometheus name rules (metric and label names).
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

}  // namespace rampart::metrics
