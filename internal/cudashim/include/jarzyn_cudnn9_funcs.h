/*
 * jarzyn: prototypes of the cuDNN 9 functions that gorgonia.org/cu/dnn
 * v0.9.6 calls and cuDNN 9 still exports, written for this project (see
 * jarzyn_cudnn9_types.h). Deliberately without an include guard or type
 * definitions: scripts/gpu/cudnn-abi-check.sh includes this file after the real
 * cudnn.h, where the compiler rejects any prototype that differs from cuDNN's.
 */
#define JZ cudnnStatus_t
#define TD const cudnnTensorDescriptor_t
#define FD const cudnnFilterDescriptor_t
#define CD const cudnnConvolutionDescriptor_t
#define H cudnnHandle_t
#define CV const void *

/* graph */
size_t cudnnGetVersion(void);
JZ cudnnCreate(cudnnHandle_t *);
JZ cudnnDestroy(cudnnHandle_t);
JZ cudnnBackendCreateDescriptor(cudnnBackendDescriptorType_t, cudnnBackendDescriptor_t *);
JZ cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t);
JZ cudnnBackendSetAttribute(cudnnBackendDescriptor_t, cudnnBackendAttributeName_t, cudnnBackendAttributeType_t, int64_t, CV);

/* ops: tensors, transforms, reductions */
JZ cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *);
JZ cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t, cudnnTensorFormat_t, cudnnDataType_t, int, int, int, int);
JZ cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t, cudnnDataType_t, int, int, int, int, int, int, int, int);
JZ cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t, cudnnDataType_t, int, const int[], const int[]);
JZ cudnnSetTensorNdDescriptorEx(cudnnTensorDescriptor_t, cudnnTensorFormat_t, cudnnDataType_t, int, const int[]);
JZ cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t);
JZ cudnnCreateTensorTransformDescriptor(cudnnTensorTransformDescriptor_t *);
JZ cudnnSetTensorTransformDescriptor(cudnnTensorTransformDescriptor_t, const uint32_t, const cudnnTensorFormat_t, const int32_t[], const int32_t[], const uint32_t[], const cudnnFoldingDirection_t);
JZ cudnnDestroyTensorTransformDescriptor(cudnnTensorTransformDescriptor_t);
JZ cudnnTransformTensor(H, CV, TD, CV, CV, TD, void *);
JZ cudnnAddTensor(H, CV, TD, CV, CV, TD, void *);
JZ cudnnCreateOpTensorDescriptor(cudnnOpTensorDescriptor_t *);
JZ cudnnSetOpTensorDescriptor(cudnnOpTensorDescriptor_t, cudnnOpTensorOp_t, cudnnDataType_t, cudnnNanPropagation_t);
JZ cudnnDestroyOpTensorDescriptor(cudnnOpTensorDescriptor_t);
JZ cudnnOpTensor(H, const cudnnOpTensorDescriptor_t, CV, TD, CV, CV, TD, CV, CV, TD, void *);
JZ cudnnCreateReduceTensorDescriptor(cudnnReduceTensorDescriptor_t *);
JZ cudnnSetReduceTensorDescriptor(cudnnReduceTensorDescriptor_t, cudnnReduceTensorOp_t, cudnnDataType_t, cudnnNanPropagation_t, cudnnReduceTensorIndices_t, cudnnIndicesType_t);
JZ cudnnDestroyReduceTensorDescriptor(cudnnReduceTensorDescriptor_t);
JZ cudnnGetReductionIndicesSize(H, const cudnnReduceTensorDescriptor_t, TD, TD, size_t *);
JZ cudnnGetReductionWorkspaceSize(H, const cudnnReduceTensorDescriptor_t, TD, TD, size_t *);
JZ cudnnReduceTensor(H, const cudnnReduceTensorDescriptor_t, void *, size_t, void *, size_t, CV, TD, CV, CV, TD, void *);
JZ cudnnScaleTensor(H, TD, void *, CV);

/* ops: filters, softmax, pooling, activation, LRN */
JZ cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *);
JZ cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t, cudnnDataType_t, cudnnTensorFormat_t, int, int, int, int);
JZ cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t, cudnnDataType_t, cudnnTensorFormat_t, int, const int[]);
JZ cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t);
JZ cudnnSoftmaxForward(H, cudnnSoftmaxAlgorithm_t, cudnnSoftmaxMode_t, CV, TD, CV, CV, TD, void *);
JZ cudnnSoftmaxBackward(H, cudnnSoftmaxAlgorithm_t, cudnnSoftmaxMode_t, CV, TD, CV, TD, CV, CV, TD, void *);
JZ cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor_t *);
JZ cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t, cudnnPoolingMode_t, cudnnNanPropagation_t, int, int, int, int, int, int);
JZ cudnnSetPoolingNdDescriptor(cudnnPoolingDescriptor_t, const cudnnPoolingMode_t, const cudnnNanPropagation_t, int, const int[], const int[], const int[]);
JZ cudnnGetPoolingNdForwardOutputDim(const cudnnPoolingDescriptor_t, TD, int, int[]);
JZ cudnnGetPooling2dForwardOutputDim(const cudnnPoolingDescriptor_t, TD, int *, int *, int *, int *);
JZ cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor_t);
JZ cudnnPoolingForward(H, const cudnnPoolingDescriptor_t, CV, TD, CV, CV, TD, void *);
JZ cudnnPoolingBackward(H, const cudnnPoolingDescriptor_t, CV, TD, CV, TD, CV, TD, CV, CV, TD, void *);
JZ cudnnCreateActivationDescriptor(cudnnActivationDescriptor_t *);
JZ cudnnSetActivationDescriptor(cudnnActivationDescriptor_t, cudnnActivationMode_t, cudnnNanPropagation_t, double);
JZ cudnnDestroyActivationDescriptor(cudnnActivationDescriptor_t);
JZ cudnnActivationForward(H, cudnnActivationDescriptor_t, CV, TD, CV, CV, TD, void *);
JZ cudnnActivationBackward(H, cudnnActivationDescriptor_t, CV, TD, CV, TD, CV, TD, CV, CV, TD, void *);
JZ cudnnCreateLRNDescriptor(cudnnLRNDescriptor_t *);
JZ cudnnSetLRNDescriptor(cudnnLRNDescriptor_t, unsigned, double, double, double);
JZ cudnnDestroyLRNDescriptor(cudnnLRNDescriptor_t);
JZ cudnnLRNCrossChannelForward(H, cudnnLRNDescriptor_t, cudnnLRNMode_t, CV, TD, CV, CV, TD, void *);
JZ cudnnLRNCrossChannelBackward(H, cudnnLRNDescriptor_t, cudnnLRNMode_t, CV, TD, CV, TD, CV, TD, CV, CV, TD, void *);
JZ cudnnDivisiveNormalizationForward(H, cudnnLRNDescriptor_t, cudnnDivNormMode_t, CV, TD, CV, CV, void *, void *, CV, TD, void *);
JZ cudnnDivisiveNormalizationBackward(H, cudnnLRNDescriptor_t, cudnnDivNormMode_t, CV, TD, CV, CV, CV, void *, void *, CV, TD, void *, void *);

/* ops: batch normalization, spatial transformer, dropout */
JZ cudnnDeriveBNTensorDescriptor(cudnnTensorDescriptor_t, TD, cudnnBatchNormMode_t);
JZ cudnnBatchNormalizationForwardInference(H, cudnnBatchNormMode_t, CV, CV, TD, CV, TD, void *, TD, CV, CV, CV, CV, double);
JZ cudnnBatchNormalizationForwardTraining(H, cudnnBatchNormMode_t, CV, CV, TD, CV, TD, void *, TD, CV, CV, double, void *, void *, double, void *, void *);
JZ cudnnBatchNormalizationBackward(H, cudnnBatchNormMode_t, CV, CV, CV, CV, TD, CV, TD, CV, TD, void *, TD, CV, void *, void *, double, CV, CV);
JZ cudnnCreateSpatialTransformerDescriptor(cudnnSpatialTransformerDescriptor_t *);
JZ cudnnSetSpatialTransformerNdDescriptor(cudnnSpatialTransformerDescriptor_t, cudnnSamplerType_t, cudnnDataType_t, const int, const int[]);
JZ cudnnDestroySpatialTransformerDescriptor(cudnnSpatialTransformerDescriptor_t);
JZ cudnnSpatialTfGridGeneratorForward(H, const cudnnSpatialTransformerDescriptor_t, CV, void *);
JZ cudnnSpatialTfSamplerForward(H, cudnnSpatialTransformerDescriptor_t, CV, TD, CV, CV, CV, cudnnTensorDescriptor_t, void *);
JZ cudnnSpatialTfGridGeneratorBackward(H, const cudnnSpatialTransformerDescriptor_t, CV, void *);
JZ cudnnSpatialTfSamplerBackward(H, cudnnSpatialTransformerDescriptor_t, CV, TD, CV, CV, TD, void *, CV, TD, CV, CV, CV, void *);
JZ cudnnCreateDropoutDescriptor(cudnnDropoutDescriptor_t *);
JZ cudnnDestroyDropoutDescriptor(cudnnDropoutDescriptor_t);
JZ cudnnDropoutGetStatesSize(H, size_t *);
JZ cudnnDropoutGetReserveSpaceSize(cudnnTensorDescriptor_t, size_t *);
JZ cudnnSetDropoutDescriptor(cudnnDropoutDescriptor_t, H, float, void *, size_t, unsigned long long);
JZ cudnnRestoreDropoutDescriptor(cudnnDropoutDescriptor_t, H, float, void *, size_t, unsigned long long);
JZ cudnnDropoutForward(H, const cudnnDropoutDescriptor_t, TD, CV, TD, void *, void *, size_t);
JZ cudnnDropoutBackward(H, const cudnnDropoutDescriptor_t, TD, CV, TD, void *, void *, size_t);

/* cnn */
JZ cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *);
JZ cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t);
JZ cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t, cudnnMathType_t);
JZ cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t, int);
JZ cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t, int, int, int, int, int, int, cudnnConvolutionMode_t, cudnnDataType_t);
JZ cudnnSetConvolutionNdDescriptor(cudnnConvolutionDescriptor_t, int, const int[], const int[], const int[], cudnnConvolutionMode_t, cudnnDataType_t);
JZ cudnnGetConvolution2dForwardOutputDim(CD, TD, FD, int *, int *, int *, int *);
JZ cudnnGetConvolutionNdForwardOutputDim(CD, TD, FD, int, int[]);
JZ cudnnFindConvolutionForwardAlgorithm(H, TD, FD, CD, TD, const int, int *, cudnnConvolutionFwdAlgoPerf_t *);
JZ cudnnFindConvolutionForwardAlgorithmEx(H, TD, CV, FD, CV, CD, TD, void *, const int, int *, cudnnConvolutionFwdAlgoPerf_t *, void *, size_t);
JZ cudnnIm2Col(H, TD, CV, FD, CD, void *);
JZ cudnnConvolutionForward(H, CV, TD, CV, FD, CV, CD, cudnnConvolutionFwdAlgo_t, void *, size_t, CV, TD, void *);
JZ cudnnConvolutionBiasActivationForward(H, CV, TD, CV, FD, CV, CD, cudnnConvolutionFwdAlgo_t, void *, size_t, CV, TD, CV, TD, CV, const cudnnActivationDescriptor_t, TD, void *);
JZ cudnnFindConvolutionBackwardDataAlgorithm(H, FD, TD, CD, TD, const int, int *, cudnnConvolutionBwdDataAlgoPerf_t *);
JZ cudnnFindConvolutionBackwardDataAlgorithmEx(H, FD, CV, TD, CV, CD, TD, void *, const int, int *, cudnnConvolutionBwdDataAlgoPerf_t *, void *, size_t);
JZ cudnnConvolutionBackwardData(H, CV, FD, CV, TD, CV, CD, cudnnConvolutionBwdDataAlgo_t, void *, size_t, CV, TD, void *);
JZ cudnnFindConvolutionBackwardFilterAlgorithm(H, TD, TD, CD, FD, const int, int *, cudnnConvolutionBwdFilterAlgoPerf_t *);
JZ cudnnFindConvolutionBackwardFilterAlgorithmEx(H, TD, CV, TD, CV, CD, FD, void *, const int, int *, cudnnConvolutionBwdFilterAlgoPerf_t *, void *, size_t);
JZ cudnnConvolutionBackwardFilter(H, CV, TD, CV, TD, CV, CD, cudnnConvolutionBwdFilterAlgo_t, void *, size_t, CV, FD, void *);
JZ cudnnConvolutionBackwardBias(H, CV, TD, CV, CV, TD, void *);
JZ cudnnCreateFusedOpsConstParamPack(cudnnFusedOpsConstParamPack_t *, cudnnFusedOps_t);
JZ cudnnDestroyFusedOpsConstParamPack(cudnnFusedOpsConstParamPack_t);
JZ cudnnSetFusedOpsConstParamPackAttribute(cudnnFusedOpsConstParamPack_t, cudnnFusedOpsConstParamLabel_t, CV);
JZ cudnnCreateFusedOpsVariantParamPack(cudnnFusedOpsVariantParamPack_t *, cudnnFusedOps_t);
JZ cudnnDestroyFusedOpsVariantParamPack(cudnnFusedOpsVariantParamPack_t);
JZ cudnnSetFusedOpsVariantParamPackAttribute(cudnnFusedOpsVariantParamPack_t, cudnnFusedOpsVariantParamLabel_t, void *);

/* adv: RNN, sequence data, attention, CTC */
JZ cudnnCreateRNNDescriptor(cudnnRNNDescriptor_t *);
JZ cudnnDestroyRNNDescriptor(cudnnRNNDescriptor_t);
JZ cudnnSetRNNDescriptor_v8(cudnnRNNDescriptor_t, cudnnRNNAlgo_t, cudnnRNNMode_t, cudnnRNNBiasMode_t, cudnnDirectionMode_t, cudnnRNNInputMode_t, cudnnDataType_t, cudnnDataType_t, cudnnMathType_t, int32_t, int32_t, int32_t, int32_t, cudnnDropoutDescriptor_t, uint32_t);
JZ cudnnCreateRNNDataDescriptor(cudnnRNNDataDescriptor_t *);
JZ cudnnDestroyRNNDataDescriptor(cudnnRNNDataDescriptor_t);
JZ cudnnSetRNNDataDescriptor(cudnnRNNDataDescriptor_t, cudnnDataType_t, cudnnRNNDataLayout_t, int, int, int, const int[], void *);
JZ cudnnCreateSeqDataDescriptor(cudnnSeqDataDescriptor_t *);
JZ cudnnDestroySeqDataDescriptor(cudnnSeqDataDescriptor_t);
JZ cudnnSetSeqDataDescriptor(cudnnSeqDataDescriptor_t, cudnnDataType_t, int, const int[], const cudnnSeqDataAxis_t[], size_t, const int[], void *);
JZ cudnnCreateAttnDescriptor(cudnnAttnDescriptor_t *);
JZ cudnnDestroyAttnDescriptor(cudnnAttnDescriptor_t);
JZ cudnnSetAttnDescriptor(cudnnAttnDescriptor_t, unsigned, int, double, cudnnDataType_t, cudnnDataType_t, cudnnMathType_t, cudnnDropoutDescriptor_t, cudnnDropoutDescriptor_t, int, int, int, int, int, int, int, int, int, int, int);
JZ cudnnCreateCTCLossDescriptor(cudnnCTCLossDescriptor_t *);
JZ cudnnDestroyCTCLossDescriptor(cudnnCTCLossDescriptor_t);
JZ cudnnCTCLoss(H, TD, CV, const int[], const int[], const int[], void *, TD, void *, cudnnCTCLossAlgo_t, cudnnCTCLossDescriptor_t, void *, size_t);

#undef JZ
#undef TD
#undef FD
#undef CD
#undef H
#undef CV
