// Radiant kernels: Python bindings of the BSDF family (eval, pdf, sample over packed parameter rows), by device.
#include "../cpu/bsdf_cpu.h"
#include "radiant/bsdf_params.h"
#include "radiant/warp.h"
#include "registry.h"
#ifdef RADIANT_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>

#include "../gpu/bsdf_gpu.h"
#endif

namespace radiant {
namespace {

// Checks params (R, P) float32, optional index (N,) int32 in [0, R), and that R is 1 or N when no index.
const int32_t* check_params(const at::Tensor& params, const c10::optional<at::Tensor>& index, const at::Tensor& wi,
                            int64_t n) {
    check_tensor(params, "params", at::kFloat, 2, kBSDFParamCount);
    check_same_device(wi, "wi", params, "params");
    TORCH_CHECK_VALUE(params.is_contiguous(), "params: expected a contiguous tensor");
    TORCH_CHECK_VALUE(params.size(0) >= 1, "params: expected at least one row");
    if (index.has_value() && index->defined()) {
        check_tensor(*index, "index", at::kInt, 1);
        check_rows(*index, "index", n);
        check_same_device(wi, "wi", *index, "index");
        TORCH_CHECK_VALUE(index->is_contiguous(), "index: expected a contiguous tensor");
        if (n > 0) {
            int64_t lo = index->min().item<int64_t>(), hi = index->max().item<int64_t>();
            TORCH_CHECK_VALUE(lo >= 0 && hi < params.size(0), "index: expected rows in [0, ", params.size(0),
                              "), got [", lo, ", ", hi, "]");
        }
        return index->data_ptr<int32_t>();
    }
    TORCH_CHECK_VALUE(params.size(0) == 1 || params.size(0) == n, "params: expected 1 or ", n,
                      " rows (or an index), got shape ", params.sizes());
    return nullptr;
}

void check_dirs(const at::Tensor& t, const char* name, int64_t n) {
    check_tensor(t, name, at::kFloat, 2, 3);
    check_rows(t, name, n);
    TORCH_CHECK_VALUE(t.is_contiguous(), name, ": expected a contiguous tensor");
}

at::Tensor bsdf_eval(at::Tensor params, at::Tensor wi, at::Tensor wo, c10::optional<at::Tensor> index) {
    check_tensor(wi, "wi", at::kFloat, 2, 3);
    int64_t n = wi.size(0);
    check_dirs(wi, "wi", n);
    check_dirs(wo, "wo", n);
    check_same_device(wi, "wi", wo, "wo");
    const int32_t* idx = check_params(params, index, wi, n);
    at::Tensor value = at::empty({n, 3}, wi.options());
    if (wi.is_cuda()) {
#ifdef RADIANT_WITH_CUDA
        bsdf_eval_cuda(params.data_ptr<float>(), params.size(0), idx, wi.data_ptr<float>(), wo.data_ptr<float>(), n,
                       value.data_ptr<float>(), at::cuda::getCurrentCUDAStream());
#else
        TORCH_CHECK_VALUE(false, "wi: CUDA tensor given but the radiant kernels were built without CUDA");
#endif
    } else {
        bsdf_eval_cpu(params.data_ptr<float>(), params.size(0), idx, wi.data_ptr<float>(), wo.data_ptr<float>(), n,
                      value.data_ptr<float>());
    }
    return value;
}

at::Tensor bsdf_pdf(at::Tensor params, at::Tensor wi, at::Tensor wo, c10::optional<at::Tensor> index) {
    check_tensor(wi, "wi", at::kFloat, 2, 3);
    int64_t n = wi.size(0);
    check_dirs(wi, "wi", n);
    check_dirs(wo, "wo", n);
    check_same_device(wi, "wi", wo, "wo");
    const int32_t* idx = check_params(params, index, wi, n);
    at::Tensor pdf = at::empty({n}, wi.options());
    if (wi.is_cuda()) {
#ifdef RADIANT_WITH_CUDA
        bsdf_pdf_cuda(params.data_ptr<float>(), params.size(0), idx, wi.data_ptr<float>(), wo.data_ptr<float>(), n,
                      pdf.data_ptr<float>(), at::cuda::getCurrentCUDAStream());
#else
        TORCH_CHECK_VALUE(false, "wi: CUDA tensor given but the radiant kernels were built without CUDA");
#endif
    } else {
        bsdf_pdf_cpu(params.data_ptr<float>(), params.size(0), idx, wi.data_ptr<float>(), wo.data_ptr<float>(), n,
                     pdf.data_ptr<float>());
    }
    return pdf;
}

// Returns (wo (N,3), weight (N,3), pdf (N,), eta (N,), flags (N,) int32).
std::vector<at::Tensor> bsdf_sample(at::Tensor params, at::Tensor wi, at::Tensor u1, at::Tensor u2,
                                    c10::optional<at::Tensor> index) {
    check_tensor(wi, "wi", at::kFloat, 2, 3);
    int64_t n = wi.size(0);
    check_dirs(wi, "wi", n);
    check_tensor(u1, "sample1", at::kFloat, 1);
    check_rows(u1, "sample1", n);
    check_tensor(u2, "sample2", at::kFloat, 2, 2);
    check_rows(u2, "sample2", n);
    check_same_device(wi, "wi", u1, "sample1");
    check_same_device(wi, "wi", u2, "sample2");
    TORCH_CHECK_VALUE(u1.is_contiguous() && u2.is_contiguous(), "sample1, sample2: expected contiguous tensors");
    const int32_t* idx = check_params(params, index, wi, n);
    auto opts = wi.options();
    at::Tensor wo = at::empty({n, 3}, opts), weight = at::empty({n, 3}, opts), pdf = at::empty({n}, opts),
               eta = at::empty({n}, opts), flags = at::empty({n}, opts.dtype(at::kInt));
    if (wi.is_cuda()) {
#ifdef RADIANT_WITH_CUDA
        bsdf_sample_cuda(params.data_ptr<float>(), params.size(0), idx, wi.data_ptr<float>(), u1.data_ptr<float>(),
                         u2.data_ptr<float>(), n, wo.data_ptr<float>(), weight.data_ptr<float>(), pdf.data_ptr<float>(),
                         eta.data_ptr<float>(), flags.data_ptr<int32_t>(), at::cuda::getCurrentCUDAStream());
#else
        TORCH_CHECK_VALUE(false, "wi: CUDA tensor given but the radiant kernels were built without CUDA");
#endif
    } else {
        bsdf_sample_cpu(params.data_ptr<float>(), params.size(0), idx, wi.data_ptr<float>(), u1.data_ptr<float>(),
                        u2.data_ptr<float>(), n, wo.data_ptr<float>(), weight.data_ptr<float>(), pdf.data_ptr<float>(),
                        eta.data_ptr<float>(), flags.data_ptr<int32_t>());
    }
    return {wo, weight, pdf, eta, flags};
}

// Returns (points (N,3), pdf (N,)) of warp `kind` (radiant/warp.h WarpKind) applied to u (N,2).
std::vector<at::Tensor> warp_sample(int64_t kind, at::Tensor u, double param) {
    check_tensor(u, "u", at::kFloat, 2, 2);
    TORCH_CHECK_VALUE(u.is_contiguous(), "u: expected a contiguous tensor");
    TORCH_CHECK_VALUE(kind >= kWarpUniformSphere && kind <= kWarpTriangle, "kind: unknown warp ", kind);
    int64_t n = u.size(0);
    at::Tensor out = at::empty({n, 3}, u.options()), pdf = at::empty({n}, u.options());
    if (u.is_cuda()) {
#ifdef RADIANT_WITH_CUDA
        warp_sample_cuda((int)kind, u.data_ptr<float>(), (float)param, n, out.data_ptr<float>(), pdf.data_ptr<float>(),
                         at::cuda::getCurrentCUDAStream());
#else
        TORCH_CHECK_VALUE(false, "u: CUDA tensor given but the radiant kernels were built without CUDA");
#endif
    } else {
        warp_sample_cpu((int)kind, u.data_ptr<float>(), (float)param, n, out.data_ptr<float>(), pdf.data_ptr<float>());
    }
    return {out, pdf};
}

void register_bsdf(pybind11::module_& m) {
    using pybind11::arg;
    m.def("bsdf_eval", &bsdf_eval, "BSDF value times |cos wo| in the local frame", arg("params"), arg("wi"), arg("wo"),
          arg("index") = pybind11::none());
    m.def("bsdf_pdf", &bsdf_pdf, "Solid-angle density of bsdf_sample", arg("params"), arg("wi"), arg("wo"),
          arg("index") = pybind11::none());
    m.def("bsdf_sample", &bsdf_sample, "Importance-sample wo: (wo, weight, pdf, eta, flags)", arg("params"), arg("wi"),
          arg("sample1"), arg("sample2"), arg("index") = pybind11::none());
    m.def("warp_sample", &warp_sample, "Warp of the unit square (radiant/warp.h WarpKind) and its pdf", arg("kind"),
          arg("u"), arg("param") = 0.0);
    m.attr("bsdf_param_count") = kBSDFParamCount;
}

static Registrar registrar(&register_bsdf);

}  // namespace
}  // namespace radiant
