// Radiant kernels: Python bindings of the hash-grid encoding, dispatched by device.
#include "../cpu/hashgrid_cpu.h"
#include "registry.h"
#ifdef RADIANT_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>

#include "../gpu/hashgrid_gpu.h"
#endif

namespace radiant {
namespace {

// resolutions float32 (L,), offsets int32 (L,), dense uint8 (L,), on the points' device.
HashGridView make_view(const at::Tensor& table, const at::Tensor& resolutions, const at::Tensor& offsets,
                       const at::Tensor& dense, int64_t table_size, double bound) {
    check_tensor(table, "table", at::kFloat, 2);
    check_tensor(resolutions, "resolutions", at::kFloat, 1);
    check_tensor(offsets, "offsets", at::kInt, 1);
    check_tensor(dense, "dense", at::kByte, 1);
    int64_t levels = resolutions.size(0);
    TORCH_CHECK_VALUE(levels >= 1 && offsets.size(0) == levels && dense.size(0) == levels,
                      "resolutions/offsets/dense: expected the same length >= 1");
    TORCH_CHECK_VALUE(table.size(1) >= 1 && table.size(1) <= kHashMaxFeatures, "table: expected 1 to ",
                      kHashMaxFeatures, " features per row, got shape ", table.sizes());
    TORCH_CHECK_VALUE(table_size >= 1 && (table_size & (table_size - 1)) == 0 && table_size <= (1ll << 30),
                      "table_size: expected a power of two, got ", table_size);
    TORCH_CHECK_VALUE(bound > 0, "bound: expected > 0, got ", bound);
    for (auto* t : {&table, &resolutions, &offsets, &dense})
        TORCH_CHECK_VALUE(t->is_contiguous(), "hash grid tensors: expected contiguous tensors");
    HashGridView g;
    g.levels = (int32_t)levels;
    g.features = (int32_t)table.size(1);
    g.table_mask = (uint32_t)(table_size - 1);
    g.bound = (float)bound;
    g.resolutions = resolutions.data_ptr<float>();
    g.offsets = offsets.data_ptr<int32_t>();
    g.dense = dense.data_ptr<uint8_t>();
    return g;
}

// Returns (features (N, L*F), jacobian (N, L*F, 3) or an empty tensor when with_jacobian is false).
std::vector<at::Tensor> hashgrid_forward(at::Tensor table, at::Tensor resolutions, at::Tensor offsets,
                                         at::Tensor dense, int64_t table_size, double bound, at::Tensor points,
                                         bool with_jacobian) {
    HashGridView g = make_view(table, resolutions, offsets, dense, table_size, bound);
    check_tensor(points, "points", at::kFloat, 2, 3);
    TORCH_CHECK_VALUE(points.is_contiguous(), "points: expected a contiguous tensor");
    for (auto [t, name] : {std::pair{&resolutions, "resolutions"}, {&offsets, "offsets"}, {&dense, "dense"},
                           {&points, "points"}})
        check_same_device(table, "table", *t, name);
    int64_t n = points.size(0), width = (int64_t)g.levels * g.features;
    at::Tensor features = at::empty({n, width}, points.options());
    at::Tensor jacobian = with_jacobian ? at::empty({n, width, 3}, points.options()) : at::empty({0}, points.options());
    float* jac = with_jacobian ? jacobian.data_ptr<float>() : nullptr;
    if (points.is_cuda()) {
#ifdef RADIANT_WITH_CUDA
        hashgrid_forward_cuda(g, table.data_ptr<float>(), points.data_ptr<float>(), n, features.data_ptr<float>(), jac,
                              at::cuda::getCurrentCUDAStream());
#else
        TORCH_CHECK_VALUE(false, "points: CUDA tensor given but the radiant kernels were built without CUDA");
#endif
    } else {
        hashgrid_forward_cpu(g, table.data_ptr<float>(), points.data_ptr<float>(), n, features.data_ptr<float>(), jac);
    }
    return {features, jacobian};
}

// The table's gradient (rows, F) from grad_features (N, L*F) and/or grad_jacobian (N, L*F, 3) (None: zero).
at::Tensor hashgrid_backward(at::Tensor table, at::Tensor resolutions, at::Tensor offsets, at::Tensor dense,
                             int64_t table_size, double bound, at::Tensor points,
                             c10::optional<at::Tensor> grad_features, c10::optional<at::Tensor> grad_jacobian) {
    HashGridView g = make_view(table, resolutions, offsets, dense, table_size, bound);
    check_tensor(points, "points", at::kFloat, 2, 3);
    TORCH_CHECK_VALUE(points.is_contiguous(), "points: expected a contiguous tensor");
    int64_t n = points.size(0), width = (int64_t)g.levels * g.features;
    const float* gf = nullptr;
    const float* gj = nullptr;
    if (grad_features && grad_features->defined()) {
        check_tensor(*grad_features, "grad_features", at::kFloat, 2, width);
        check_rows(*grad_features, "grad_features", n);
        check_same_device(points, "points", *grad_features, "grad_features");
        TORCH_CHECK_VALUE(grad_features->is_contiguous(), "grad_features: expected a contiguous tensor");
        gf = grad_features->data_ptr<float>();
    }
    if (grad_jacobian && grad_jacobian->defined()) {
        check_tensor(*grad_jacobian, "grad_jacobian", at::kFloat, 3, 3);
        check_rows(*grad_jacobian, "grad_jacobian", n);
        TORCH_CHECK_VALUE(grad_jacobian->size(1) == width, "grad_jacobian: expected shape (N, ", width, ", 3)");
        check_same_device(points, "points", *grad_jacobian, "grad_jacobian");
        TORCH_CHECK_VALUE(grad_jacobian->is_contiguous(), "grad_jacobian: expected a contiguous tensor");
        gj = grad_jacobian->data_ptr<float>();
    }
    at::Tensor grad_table = at::zeros_like(table);
    if (points.is_cuda()) {
#ifdef RADIANT_WITH_CUDA
        hashgrid_backward_cuda(g, points.data_ptr<float>(), n, gf, gj, grad_table.data_ptr<float>(),
                               at::cuda::getCurrentCUDAStream());
#else
        TORCH_CHECK_VALUE(false, "points: CUDA tensor given but the radiant kernels were built without CUDA");
#endif
    } else {
        hashgrid_backward_cpu(g, points.data_ptr<float>(), n, gf, gj, grad_table.data_ptr<float>(), table.size(0));
    }
    return grad_table;
}

void register_hashgrid(pybind11::module_& m) {
    m.def("hashgrid_forward", &hashgrid_forward, "Hash-grid encoding with its spatial Jacobian",
          pybind11::arg("table"), pybind11::arg("resolutions"), pybind11::arg("offsets"), pybind11::arg("dense"),
          pybind11::arg("table_size"), pybind11::arg("bound"), pybind11::arg("points"),
          pybind11::arg("with_jacobian"));
    m.def("hashgrid_backward", &hashgrid_backward, "Hash-grid encoding: gradient of the table",
          pybind11::arg("table"), pybind11::arg("resolutions"), pybind11::arg("offsets"), pybind11::arg("dense"),
          pybind11::arg("table_size"), pybind11::arg("bound"), pybind11::arg("points"),
          pybind11::arg("grad_features"), pybind11::arg("grad_jacobian"));
}

static Registrar registrar(&register_hashgrid);

}  // namespace
}  // namespace radiant
