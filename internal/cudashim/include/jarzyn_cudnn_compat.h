/*
 * jarzyn: the cuDNN 7/8 entry points that gorgonia.org/cu/dnn v0.9.6 calls
 * and cuDNN 9 removed, with their cuDNN 8 prototypes, so that cu/dnn compiles
 * against cuDNN 9. They are defined in ../cudnn_compat.c (package
 * internal/cudashim), linked into every -tags cuda binary: the algorithm
 * descriptor/performance containers are emulated on the host (they were plain
 * host-side containers in cuDNN 8); the persistent-RNN-plan API and
 * cudnnSetRNNMatrixMathType, replaced in cuDNN 9 by cudnnBuildRNNDynamic and
 * the mathType argument of cudnnSetRNNDescriptor_v8, return
 * CUDNN_STATUS_NOT_SUPPORTED. jarzyn's graphs call none of them.
 */
#ifndef JARZYN_CUDNN_COMPAT_H
#define JARZYN_CUDNN_COMPAT_H

#if defined(__cplusplus)
extern "C" {
#endif

typedef struct cudnnAlgorithmStruct *cudnnAlgorithmDescriptor_t;
typedef struct cudnnAlgorithmPerformanceStruct *cudnnAlgorithmPerformance_t;
typedef struct cudnnPersistentRNNPlan *cudnnPersistentRNNPlan_t;

typedef struct cudnnAlgorithmUnionStruct {
	union Algorithm {
		cudnnConvolutionFwdAlgo_t convFwdAlgo;
		cudnnConvolutionBwdFilterAlgo_t convBwdFilterAlgo;
		cudnnConvolutionBwdDataAlgo_t convBwdDataAlgo;
		cudnnRNNAlgo_t RNNAlgo;
		cudnnCTCLossAlgo_t CTCLossAlgo;
	} algo;
} cudnnAlgorithm_t;

cudnnStatus_t cudnnCreateAlgorithmDescriptor(cudnnAlgorithmDescriptor_t *algoDesc);
cudnnStatus_t cudnnSetAlgorithmDescriptor(cudnnAlgorithmDescriptor_t algoDesc, cudnnAlgorithm_t algorithm);
cudnnStatus_t cudnnDestroyAlgorithmDescriptor(cudnnAlgorithmDescriptor_t algoDesc);
cudnnStatus_t cudnnCreateAlgorithmPerformance(cudnnAlgorithmPerformance_t *algoPerf, int numberToCreate);
cudnnStatus_t cudnnSetAlgorithmPerformance(cudnnAlgorithmPerformance_t algoPerf, cudnnAlgorithmDescriptor_t algoDesc,
	cudnnStatus_t status, float time, size_t memory);
cudnnStatus_t cudnnDestroyAlgorithmPerformance(cudnnAlgorithmPerformance_t *algoPerf, int numberToDestroy);

cudnnStatus_t cudnnCreatePersistentRNNPlan(cudnnRNNDescriptor_t rnnDesc, const int minibatch,
	const cudnnDataType_t dataType, cudnnPersistentRNNPlan_t *plan);
cudnnStatus_t cudnnSetPersistentRNNPlan(cudnnRNNDescriptor_t rnnDesc, cudnnPersistentRNNPlan_t plan);
cudnnStatus_t cudnnDestroyPersistentRNNPlan(cudnnPersistentRNNPlan_t plan);
cudnnStatus_t cudnnSetRNNMatrixMathType(cudnnRNNDescriptor_t rnnDesc, cudnnMathType_t mType);

/* jarzyn's own: the number of compat entry points called so far (diagnostics) */
int jarzyn_cudnn_compat_calls(void);

#if defined(__cplusplus)
}
#endif
#endif /* JARZYN_CUDNN_COMPAT_H */
