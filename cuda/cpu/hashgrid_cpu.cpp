// Radiant kernels: CPU loops of the hash-grid encoding over hashgrid.h.
#include "hashgrid_cpu.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "parallel.h"

namespace radiant {

void hashgrid_forward_cpu(const HashGridView& g, const float* table, const float* points, int64_t n, float* features,
                          float* jacobian) {
    const int64_t width = (int64_t)g.levels * g.features;
    parallel_chunks(n, 256, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i)
            for (int32_t l = 0; l < g.levels; ++l)
                hashgrid_encode_level(g, table, l, points + 3 * i, features + i * width,
                                      jacobian ? jacobian + i * width * 3 : nullptr);
    });
}

void hashgrid_backward_cpu(const HashGridView& g, const float* points, int64_t n, const float* grad_features,
                           const float* grad_jacobian, float* grad_table, int64_t table_rows) {
    const int64_t width = (int64_t)g.levels * g.features;
    const int64_t size = table_rows * g.features;
    // Scatter-add without atomics: each thread owns a private gradient buffer over a contiguous range of points
    // (the first thread writes straight into grad_table), summed at the end.
    int64_t threads = std::min<int64_t>(std::max(1, at::get_num_threads()), std::max<int64_t>(1, n / 4096));
    std::vector<std::vector<float>> buffers(threads > 1 ? threads - 1 : 0);
    auto run = [&](int64_t t) {
        float* dst = t == 0 ? grad_table : nullptr;
        if (t > 0) {
            buffers[t - 1].assign(size, 0.f);
            dst = buffers[t - 1].data();
        }
        int64_t begin = n * t / threads, end = n * (t + 1) / threads;
        auto add = [dst](int64_t k, float v) { dst[k] += v; };
        for (int64_t i = begin; i < end; ++i)
            for (int32_t l = 0; l < g.levels; ++l)
                hashgrid_backward_level(g, l, points + 3 * i, grad_features ? grad_features + i * width : nullptr,
                                        grad_jacobian ? grad_jacobian + i * width * 3 : nullptr, add);
    };
    std::vector<std::thread> pool;
    for (int64_t t = 1; t < threads; ++t) pool.emplace_back(run, t);
    run(0);
    for (auto& th : pool) th.join();
    for (auto& b : buffers) {
        parallel_chunks(size, 1 << 16, [&](int64_t begin, int64_t end) {
            for (int64_t k = begin; k < end; ++k) grad_table[k] += b[k];
        });
    }
}

}  // namespace radiant
