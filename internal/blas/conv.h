// Patch layouts of a convolution for GEMM (see conv.go).
#ifndef JARZYN_BLAS_CONV_H
#define JARZYN_BLAS_CONV_H

// jz_conv_geom is one convolution: input [C, H, W], square kernel K, stride
// S, zero padding P, output Ho × Wo.
typedef struct {
	long C, H, W, K, S, P, Ho, Wo;
} jz_conv_geom;

// jz_im2col_* write the patches of n samples x (n × C·H·W, NCHW) into cols:
// row r = (c·K + kh)·K + kw (row stride ld), column s·Ho·Wo + oh·Wo + ow,
// the value x[s, c, oh·S − P + kh, ow·S − P + kw], or 0 in the padding.
void jz_im2col_f32(const jz_conv_geom *g, const float *x, long n, float *cols, long ld);
void jz_im2col_f64(const jz_conv_geom *g, const double *x, long n, double *cols, long ld);

// jz_col2im_* are their adjoints: dx (n × C·H·W) is overwritten with the sums
// of the entries of cols (laid out as jz_im2col_* writes them) that read
// each input value; the padding's share is dropped.
void jz_col2im_f32(const jz_conv_geom *g, const float *cols, long ld, long n, float *dx);
void jz_col2im_f64(const jz_conv_geom *g, const double *cols, long ld, long n, double *dx);

// jz_im2col_sm_* and jz_col2im_sm_* are the same for samples stored
// minor-most: xt is [C·H·W, n] (row stride n), and cols has the column
// (oh·Wo + ow)·n + s in place of s·Ho·Wo + oh·Wo + ow; every copy and sum
// then runs over n contiguous values.
void jz_im2col_sm_f32(const jz_conv_geom *g, const float *xt, long n, float *cols, long ld);
void jz_im2col_sm_f64(const jz_conv_geom *g, const double *xt, long n, double *cols, long ld);
void jz_col2im_sm_f32(const jz_conv_geom *g, const float *cols, long ld, long n, float *dxt);
void jz_col2im_sm_f64(const jz_conv_geom *g, const double *cols, long ld, long n, double *dxt);

// jz_transpose_* write out[j·ldo + i] = in[i·ldi + j]·scale[i] + add[i/group]
// for i < rows, j < cols; scale and add may be NULL (1 and 0).
void jz_transpose_f32(const float *in, long rows, long cols, long ldi, float *out, long ldo, const float *scale,
                      const float *add, long group);
void jz_transpose_f64(const double *in, long rows, long cols, long ldi, double *out, long ldo, const double *scale,
                      const double *add, long group);

// jz_transpose_leaky_* are jz_transpose_* followed by LeakyReLU: with z the
// value above, out gets z·slope where z < 0 and z elsewhere (two
// roundings, as the two steps apart).
void jz_transpose_leaky_f32(const float *in, long rows, long cols, long ldi, float *out, long ldo, const float *scale,
                            const float *add, long group, float slope);
void jz_transpose_leaky_f64(const double *in, long rows, long cols, long ldi, double *out, long ldo,
                            const double *scale, const double *add, long group, double slope);

// jz_add_rows_* add add[i] to every value of row i of y (rows × cols, row
// stride cols).
void jz_add_rows_f32(float *y, long rows, long cols, const float *add);
void jz_add_rows_f64(double *y, long rows, long cols, const double *add);

// jz_leaky_* write out[i] = x[i]·f (gy NULL) or gy[i]·f, f = slope where
// x[i] < 0 and 1 elsewhere, for i < n.
void jz_leaky_f32(const float *x, const float *gy, float slope, float *out, long n);
void jz_leaky_f64(const double *x, const double *gy, double slope, double *out, long n);

#endif
