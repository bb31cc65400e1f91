"""Core math: warps (sample_* / pdf pairs) and frames in pure torch, twins of cuda/include/radiant/{warp,frame}.h."""
