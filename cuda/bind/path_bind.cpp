// Radiant kernels: Python bindings of the fused path tracer (trace camera samples, splat them to a film), by device.
// The scene arrives as a fixed list of tensors (render/integrators/fused.py PACKED_FIELDS); every table and index
// is checked here so that bad input raises ValueError instead of reading out of bounds in the kernel.
#include "../cpu/path_cpu.h"
#include "registry.h"
#ifdef RADIANT_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>

#include "../gpu/path_gpu.h"
#endif

namespace radiant {
namespace {

struct FieldSpec {
    const char* name;
    at::ScalarType dtype;
    int64_t ndim;
    int64_t last_dim;
};

// Order and shapes of the packed scene tensors (fused.py PACKED_FIELDS mirrors this list).
const FieldSpec kFields[] = {
    {"nodes", at::kInt, 2, kNodeInts},
    {"prims", at::kFloat, 2, kPrimStride},
    {"prim_ids", at::kInt, 1, -1},
    {"vertices", at::kFloat, 2, 3},
    {"faces", at::kInt, 2, 3},
    {"normals", at::kFloat, 2, 3},
    {"uvs", at::kFloat, 2, 2},
    {"spheres", at::kFloat, 2, 4},
    {"prim_shape", at::kInt, 1, -1},
    {"shape_info", at::kInt, 2, kShapeInts},
    {"shape_to_local", at::kFloat, 2, 9},
    {"bsdf_rows", at::kFloat, 2, kBSDFParamCount},
    {"row_textures", at::kInt, 2, 2 * kRowTextures},
    {"tex_info", at::kInt, 2, kTexInts},
    {"tex_params", at::kFloat, 2, kTexFloats},
    {"tex_data", at::kFloat, 1, -1},
    {"emitter_info", at::kInt, 2, kEmitterInts},
    {"emitter_params", at::kFloat, 2, kEmitterFloats},
    {"tri_cdf", at::kFloat, 1, -1},
    {"tri_faces", at::kInt, 1, -1},
    {"env_image", at::kFloat, 3, 3},
    {"env_marginal", at::kFloat, 1, -1},
    {"env_conditional", at::kFloat, 2, -1},
    {"env_cell_pdf", at::kFloat, 2, -1},
};
constexpr int kNumFields = sizeof(kFields) / sizeof(kFields[0]);
enum Field : int {
    fNodes, fPrims, fPrimIds, fVertices, fFaces, fNormals, fUvs, fSpheres, fPrimShape, fShapeInfo, fShapeToLocal,
    fBsdfRows, fRowTextures, fTexInfo, fTexParams, fTexData, fEmitterInfo, fEmitterParams, fTriCdf, fTriFaces,
    fEnvImage, fEnvMarginal, fEnvConditional, fEnvCellPdf,
};

void check_range(const at::Tensor& t, const char* name, int64_t lo, int64_t hi_excl) {
    if (t.numel() == 0) return;
    int64_t a = t.min().item<int64_t>(), b = t.max().item<int64_t>();
    TORCH_CHECK_VALUE(a >= lo && b < hi_excl, name, ": expected values in [", lo, ", ", hi_excl, "), got [", a, ", ",
                      b, "]");
}

// Validates the packed scene against itself and returns it as raw pointers.
PackedScene pack_scene(const std::vector<at::Tensor>& t, int64_t num_triangles, int64_t env) {
    TORCH_CHECK_VALUE((int)t.size() == kNumFields, "scene: expected ", kNumFields, " tensors, got ", t.size());
    for (int i = 0; i < kNumFields; ++i) {
        const FieldSpec& f = kFields[i];
        check_tensor(t[i], f.name, f.dtype, f.ndim, f.last_dim);
        check_same_device(t[0], "nodes", t[i], f.name);
        TORCH_CHECK_VALUE(t[i].is_contiguous(), f.name, ": expected a contiguous tensor");
    }
    const int64_t V = t[fVertices].size(0), F = t[fFaces].size(0), S = t[fSpheres].size(0);
    const int64_t NS = t[fShapeInfo].size(0), R = t[fBsdfRows].size(0), T = t[fTexInfo].size(0);
    const int64_t E = t[fEmitterInfo].size(0);
    TORCH_CHECK_VALUE(num_triangles == F, "num_triangles: expected ", F, " (faces), got ", num_triangles);
    TORCH_CHECK_VALUE(t[fNormals].size(0) == V && t[fUvs].size(0) == V, "normals, uvs: expected ", V,
                      " rows (one per vertex)");
    TORCH_CHECK_VALUE(t[fPrims].size(0) == F + S && t[fPrimIds].size(0) == F + S, "prims, prim_ids: expected ", F + S,
                      " rows (faces + spheres)");
    TORCH_CHECK_VALUE(t[fPrimShape].size(0) == F + S, "prim_shape: expected ", F + S, " entries");
    TORCH_CHECK_VALUE(t[fShapeToLocal].size(0) == NS, "shape_to_local: expected ", NS, " rows (shapes)");
    TORCH_CHECK_VALUE(t[fRowTextures].size(0) == R, "row_textures: expected ", R, " rows (bsdf rows)");
    TORCH_CHECK_VALUE(t[fTexParams].size(0) == T, "tex_params: expected ", T, " rows (textures)");
    TORCH_CHECK_VALUE(t[fEmitterParams].size(0) == E, "emitter_params: expected ", E, " rows (emitters)");
    TORCH_CHECK_VALUE(t[fTriFaces].size(0) == t[fTriCdf].size(0), "tri_faces: expected as many entries as tri_cdf");
    TORCH_CHECK_VALUE(env >= -1 && env < E, "env: expected -1 or an emitter index in [0, ", E, "), got ", env);
    TORCH_CHECK_VALUE(F + S < (int64_t)INT32_MAX && V < (int64_t)INT32_MAX, "scene: too many primitives for int32");
    {  // BVH children and leaf ranges stay inside the tables.
        at::Tensor nodes = t[fNodes].to(at::kCPU);
        const int64_t N = nodes.size(0);
        const int32_t* q = nodes.data_ptr<int32_t>();
        for (int64_t i = 0; i < N; ++i) {
            for (int k = 0; k < 4; ++k) {
                int32_t child = q[i * kNodeInts + 24 + k], count = q[i * kNodeInts + 28 + k];
                TORCH_CHECK_VALUE(count < 0 || (count == 0 && child > 0 && child < N) ||
                                      (count > 0 && child >= 0 && (int64_t)child + count <= F + S),
                                  "nodes: node ", i, " slot ", k, " points outside the tree or primitives");
            }
        }
    }
    // Index checks (on the tensors' device; small tables).
    check_range(t[fFaces], "faces", 0, V);
    check_range(t[fPrimIds], "prim_ids", 0, F + S);
    check_range(t[fPrimShape], "prim_shape", 0, NS);
    if (NS > 0) {
        check_range(t[fShapeInfo].select(1, 2), "shape_info bsdf rows", 0, R);
        check_range(t[fShapeInfo].select(1, 3), "shape_info emitters", -1, E);
    }
    if (R > 0) check_range(t[fRowTextures].select(1, 1), "row_textures textures", -1, T);
    check_range(t[fTriFaces], "tri_faces", 0, F);
    const int64_t tex_len = t[fTexData].size(0);
    if (T > 0) {
        at::Tensor info = t[fTexInfo].to(at::kCPU);
        for (int64_t i = 0; i < T; ++i) {
            const int32_t* q = info.data_ptr<int32_t>() + i * kTexInts;
            TORCH_CHECK_VALUE(q[0] == 0 || q[0] == 1, "tex_info: texture ", i, " has unknown type ", q[0]);
            if (q[0] == 0) {
                TORCH_CHECK_VALUE(q[3] > 0 && q[4] > 0 && (q[5] == 1 || q[5] >= 3) && q[6] >= 0 &&
                                      (int64_t)q[6] + (int64_t)q[3] * q[4] * q[5] <= tex_len,
                                  "tex_info: texture ", i, " has a bad size or data range");
            }
        }
    }
    if (E > 0) {
        at::Tensor info = t[fEmitterInfo].to(at::kCPU);
        const int64_t ncdf = t[fTriCdf].size(0);
        for (int64_t e = 0; e < E; ++e) {
            const int32_t* q = info.data_ptr<int32_t>() + e * kEmitterInts;
            TORCH_CHECK_VALUE(q[0] >= kAreaMesh && q[0] <= kEnvmap, "emitter_info: emitter ", e, " has unknown kind ",
                              q[0]);
            if (q[0] == kAreaMesh || q[0] == kAreaSphere)
                TORCH_CHECK_VALUE(q[1] >= 0 && q[1] < NS, "emitter_info: emitter ", e, " has no valid shape");
            if (q[0] == kAreaMesh)
                TORCH_CHECK_VALUE(q[3] > 0 && q[2] >= 0 && (int64_t)q[2] + q[3] <= ncdf, "emitter_info: emitter ", e,
                                  " has a bad triangle range");
            if (q[0] == kEnvmap || q[0] == kConstant)
                TORCH_CHECK_VALUE(e == env, "emitter_info: environment emitter ", e, " is not `env` (", env, ")");
            if (e == env)
                TORCH_CHECK_VALUE(q[0] == kEnvmap || q[0] == kConstant, "env: emitter ", e,
                                  " is not an environment (constant or envmap)");
        }
    }
    int32_t env_h = 0, env_w = 0;
    if (env >= 0 && t[fEmitterInfo].to(at::kCPU).data_ptr<int32_t>()[env * kEmitterInts] == kEnvmap) {
        env_h = (int32_t)t[fEnvImage].size(0);
        env_w = (int32_t)t[fEnvImage].size(1) - 1;
        TORCH_CHECK_VALUE(env_h >= 2 && env_w >= 1, "env_image: expected at least 2 x 2 texels, got shape ",
                          t[fEnvImage].sizes());
        TORCH_CHECK_VALUE(t[fEnvMarginal].size(0) == env_h - 1, "env_marginal: expected ", env_h - 1, " entries");
        TORCH_CHECK_VALUE(t[fEnvConditional].size(0) == env_h - 1 && t[fEnvConditional].size(1) == env_w &&
                              t[fEnvCellPdf].size(0) == env_h - 1 && t[fEnvCellPdf].size(1) == env_w,
                          "env_conditional, env_cell_pdf: expected shape (", env_h - 1, ", ", env_w, ")");
    }
    PackedScene s;
    s.wide = nullptr;  // path_trace_cpu adds its 8-wide tree
    s.nodes = reinterpret_cast<const BVHNode4*>(t[fNodes].data_ptr<int32_t>());
    s.num_nodes = (int32_t)t[fNodes].size(0);
    s.prims = t[fPrims].data_ptr<float>();
    s.prim_ids = t[fPrimIds].data_ptr<int32_t>();
    s.num_triangles = (int32_t)F;
    s.num_vertices = V;
    s.vertices = t[fVertices].data_ptr<float>();
    s.faces = t[fFaces].data_ptr<int32_t>();
    s.normals = t[fNormals].data_ptr<float>();
    s.uvs = t[fUvs].data_ptr<float>();
    s.spheres = t[fSpheres].data_ptr<float>();
    s.prim_shape = t[fPrimShape].data_ptr<int32_t>();
    s.shape_info = t[fShapeInfo].data_ptr<int32_t>();
    s.shape_to_local = t[fShapeToLocal].data_ptr<float>();
    s.bsdf_rows = t[fBsdfRows].data_ptr<float>();
    s.num_bsdf_rows = (int32_t)t[fBsdfRows].size(0);
    s.row_textures = t[fRowTextures].data_ptr<int32_t>();
    s.tex_info = t[fTexInfo].data_ptr<int32_t>();
    s.tex_params = t[fTexParams].data_ptr<float>();
    s.tex_data = t[fTexData].data_ptr<float>();
    s.num_emitters = (int32_t)E;
    s.emitter_info = t[fEmitterInfo].data_ptr<int32_t>();
    s.emitter_params = t[fEmitterParams].data_ptr<float>();
    s.tri_cdf = t[fTriCdf].data_ptr<float>();
    s.tri_faces = t[fTriFaces].data_ptr<int32_t>();
    s.env = (int32_t)env;
    s.env_image = t[fEnvImage].data_ptr<float>();
    s.env_marginal = t[fEnvMarginal].data_ptr<float>();
    s.env_conditional = t[fEnvConditional].data_ptr<float>();
    s.env_cell_pdf = t[fEnvCellPdf].data_ptr<float>();
    s.env_w = env_w;
    s.env_h = env_h;
    return s;
}

PathCamera make_camera(const std::vector<double>& camera, int64_t width, int64_t height) {
    TORCH_CHECK_VALUE(camera.size() == 16, "camera: expected 16 numbers (to_world 9, pos 3, tan_x, tan_y, near, far), "
                      "got ", camera.size());
    TORCH_CHECK_VALUE(width > 0 && height > 0 && width * height < (int64_t)INT32_MAX, "width, height: expected a "
                      "positive film size, got ", width, " x ", height);
    for (double x : camera) TORCH_CHECK_VALUE(std::isfinite(x), "camera: expected finite numbers");
    PathCamera c;
    for (int i = 0; i < 9; ++i) c.to_world[i] = (float)camera[i];
    for (int i = 0; i < 3; ++i) c.pos[i] = (float)camera[9 + i];
    c.tan_x = (float)camera[12];
    c.tan_y = (float)camera[13];
    c.near_clip = (float)camera[14];
    c.far_clip = (float)camera[15];
    c.width = (int32_t)width;
    c.height = (int32_t)height;
    return c;
}

// (x0, y0, w, h) of the film, inside it; empty: the whole film.
PixelWindow make_window(const std::vector<int64_t>& v, int64_t width, int64_t height, const char* name) {
    if (v.empty()) return PixelWindow{0, 0, (int32_t)width, (int32_t)height};
    TORCH_CHECK_VALUE(v.size() == 4, name, ": expected (x0, y0, w, h), got ", v.size(), " numbers");
    TORCH_CHECK_VALUE(v[0] >= 0 && v[1] >= 0 && v[2] > 0 && v[3] > 0 && v[0] + v[2] <= width && v[1] + v[3] <= height,
                      name, ": expected a non-empty window inside the ", width, " x ", height, " film, got (", v[0],
                      ", ", v[1], ", ", v[2], ", ", v[3], ")");
    return PixelWindow{(int32_t)v[0], (int32_t)v[1], (int32_t)v[2], (int32_t)v[3]};
}

// Returns (pos (N,2), L (N,3), deferred (K, kDeferredFloats), deferred_total) for N = layers * w * h samples of
// the pixel window (x0, y0, w, h) (default: the whole film): pixel window_pixel(i % (w h)), sample index
// first_sample + i / (w h). deferred_total may exceed K = capacity.
std::vector<at::Tensor> path_trace(const std::vector<at::Tensor>& scene, int64_t num_triangles, int64_t env,
                                   const std::vector<double>& camera, int64_t width, int64_t height, int64_t max_depth,
                                   int64_t rr_depth, bool hide_emitters, int64_t seed, int64_t first_sample,
                                   int64_t layers, int64_t deferred_capacity, const std::vector<int64_t>& window) {
    PackedScene s = pack_scene(scene, num_triangles, env);
    PathCamera cam = make_camera(camera, width, height);
    PixelWindow win = make_window(window, width, height, "window");
    TORCH_CHECK_VALUE(layers >= 0 && first_sample >= 0 && first_sample + layers < (int64_t)UINT32_MAX,
                      "first_sample, layers: expected non-negative sample indices below 2^32");
    TORCH_CHECK_VALUE(deferred_capacity >= 0, "deferred_capacity: expected >= 0, got ", deferred_capacity);
    TORCH_CHECK_VALUE(rr_depth >= 0, "rr_depth: expected >= 0, got ", rr_depth);
    PathSettings st;
    st.max_depth = (int32_t)std::max<int64_t>(std::min<int64_t>(max_depth, 1 << 30), -1);
    st.rr_depth = (int32_t)std::min<int64_t>(rr_depth, 1 << 30);
    st.hide_emitters = hide_emitters;
    st.seed = (uint64_t)seed;
    int64_t n = layers * (int64_t)win.w * win.h;
    auto opts = scene[0].options().dtype(at::kFloat);
    at::Tensor pos = at::empty({n, 2}, opts), L = at::empty({n, 3}, opts);
    at::Tensor deferred = at::empty({deferred_capacity, kDeferredFloats}, opts);
    at::Tensor count = at::zeros({1}, opts.dtype(at::kLong));
    DeferredQueue q{deferred.data_ptr<float>(), deferred_capacity,
                    reinterpret_cast<unsigned long long*>(count.data_ptr<int64_t>())};
    if (scene[0].is_cuda()) {
#ifdef RADIANT_WITH_CUDA
        path_trace_cuda(s, cam, st, win, first_sample, layers, pos.data_ptr<float>(), L.data_ptr<float>(), &q,
                        at::cuda::getCurrentCUDAStream());
#else
        TORCH_CHECK_VALUE(false, "scene: CUDA tensors given but the radiant kernels were built without CUDA");
#endif
    } else {
        path_trace_cpu(s, cam, st, win, first_sample, layers, pos.data_ptr<float>(), L.data_ptr<float>(), &q);
    }
    return {pos, L, deferred, count};
}

// window: (x0, y0, w, h) of the samples' pixel window (path_trace's) then of the accumulator's pixels; empty: both
// the whole film.
void film_splat(const at::Tensor& acc, const at::Tensor& pos, const at::Tensor& values, int64_t width, int64_t height,
                int64_t filter_kind, double radius, double stddev, const std::vector<int64_t>& window) {
    check_tensor(acc, "acc", at::kDouble, 2);
    check_tensor(pos, "pos", at::kFloat, 2, 2);
    check_tensor(values, "values", at::kFloat, 2);
    check_same_device(acc, "acc", pos, "pos");
    check_same_device(acc, "acc", values, "values");
    TORCH_CHECK_VALUE(acc.is_contiguous() && pos.is_contiguous() && values.is_contiguous(),
                      "acc, pos, values: expected contiguous tensors");
    TORCH_CHECK_VALUE(width > 0 && height > 0, "width, height: expected a positive film size");
    TORCH_CHECK_VALUE(window.empty() || window.size() == 8, "window: expected 8 numbers (sample window, accumulator "
                      "window), got ", window.size());
    SplatWindow sw;
    sw.src = make_window(window.empty() ? window : std::vector<int64_t>(window.begin(), window.begin() + 4), width,
                         height, "window (samples)");
    sw.acc = make_window(window.empty() ? window : std::vector<int64_t>(window.begin() + 4, window.end()), width,
                         height, "window (accumulator)");
    int64_t channels = values.size(1);
    int64_t acc_pixels = (int64_t)sw.acc.w * sw.acc.h, src_pixels = (int64_t)sw.src.w * sw.src.h;
    TORCH_CHECK_VALUE(acc.size(0) == acc_pixels && acc.size(1) == channels + 1, "acc: expected shape (",
                      acc_pixels, ", ", channels + 1, "), got ", acc.sizes());
    int64_t n = pos.size(0);
    check_rows(values, "values", n);
    TORCH_CHECK_VALUE(n % src_pixels == 0, "pos: expected a whole number of layers of ", src_pixels,
                      " samples, got ", n);
    TORCH_CHECK_VALUE(filter_kind >= kFilterBox && filter_kind <= kFilterTent, "filter_kind: unknown filter ",
                      filter_kind);
    TORCH_CHECK_VALUE(filter_kind == kFilterBox || (radius > 0 && radius <= 7.5), "radius: expected (0, 7.5], got ",
                      radius);
    FilmFilter f = make_filter((int32_t)filter_kind, (float)radius, (float)stddev);
    int64_t layers = n / src_pixels;
    if (acc.is_cuda()) {
#ifdef RADIANT_WITH_CUDA
        film_splat_cuda(acc.data_ptr<double>(), (int32_t)width, (int32_t)height, (int32_t)channels, f, sw,
                        pos.data_ptr<float>(), values.data_ptr<float>(), layers, at::cuda::getCurrentCUDAStream());
#else
        TORCH_CHECK_VALUE(false, "acc: CUDA tensor given but the radiant kernels were built without CUDA");
#endif
    } else {
        film_splat_cpu(acc.data_ptr<double>(), (int32_t)width, (int32_t)height, (int32_t)channels, f, sw,
                       pos.data_ptr<float>(), values.data_ptr<float>(), layers);
    }
}

// Both release the GIL while they run, so a viewer's UI thread keeps running while a worker thread traces a pass.
// Their tensors are taken by const reference on purpose: the argument casters keep them alive until the GIL is
// back, since dropping the last C++ reference to a Python tensor decrefs its PyObject (torch's PyObject
// preservation), which must not happen without the GIL.
void register_path(pybind11::module_& m) {
    using pybind11::arg;
    m.def("path_trace", &path_trace, "Fused path tracer: whole paths of camera samples (pos, L, deferred, count)",
          arg("scene"), arg("num_triangles"), arg("env"), arg("camera"), arg("width"), arg("height"),
          arg("max_depth"), arg("rr_depth"), arg("hide_emitters"), arg("seed"), arg("first_sample"), arg("layers"),
          arg("deferred_capacity") = 0, arg("window") = std::vector<int64_t>{},
          pybind11::call_guard<pybind11::gil_scoped_release>());
    m.def("film_splat", &film_splat, "Add path_trace samples to a film accumulator with its reconstruction filter",
          arg("acc"), arg("pos"), arg("values"), arg("width"), arg("height"), arg("filter_kind"), arg("radius"),
          arg("stddev"), arg("window") = std::vector<int64_t>{}, pybind11::call_guard<pybind11::gil_scoped_release>());
    m.attr("path_deferred_floats") = kDeferredFloats;
    m.attr("path_deferred_type") = kDeferredBSDFType;
}

static Registrar registrar(&register_path);

}  // namespace
}  // namespace radiant
