// Radiant kernels: a parallel loop over [0, n) in dynamic chunks on std::threads, as many as torch's intra-op
// thread count. (at::parallel_for is inlined into extensions and only runs in parallel when the extension is
// built with OpenMP, which would load a second OpenMP runtime beside torch's; plain threads avoid both.)
#pragma once
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace radiant {

template <typename F>
void parallel_chunks(int64_t n, int64_t chunk, const F& body) {
    if (n <= 0) return;
    int64_t threads = std::min<int64_t>(std::max(1, at::get_num_threads()), (n + chunk - 1) / chunk);
    if (threads <= 1) {
        body(0, n);
        return;
    }
    std::atomic<int64_t> next{0};
    auto worker = [&]() {
        for (;;) {
            int64_t begin = next.fetch_add(chunk);
            if (begin >= n) break;
            body(begin, std::min(n, begin + chunk));
        }
    };
    std::vector<std::thread> pool;
    pool.reserve(threads - 1);
    for (int64_t t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& th : pool) th.join();
}

}  // namespace radiant
