//go:build cuda

// jarzyn: definitions of the cuDNN 8 entry points that cuDNN 9 removed and
// gorgonia.org/cu/dnn v0.9.6 still calls (declared in
// include/jarzyn_cudnn_compat.h). Linked into every -tags cuda binary through
// package internal/cudashim, they satisfy cu/dnn's references at link time.

#include <stdlib.h>
#include <cudnn.h>

struct cudnnAlgorithmStruct { cudnnAlgorithm_t algo; };
struct cudnnAlgorithmPerformanceStruct {
	cudnnAlgorithmDescriptor_t desc;
	cudnnStatus_t status;
	float time;
	size_t memory;
};

static volatile int compatCalls;

int jarzyn_cudnn_compat_calls(void) { return compatCalls; }

cudnnStatus_t cudnnCreateAlgorithmDescriptor(cudnnAlgorithmDescriptor_t *algoDesc) {
	compatCalls++;
	if (algoDesc == NULL) return CUDNN_STATUS_BAD_PARAM;
	*algoDesc = calloc(1, sizeof(struct cudnnAlgorithmStruct));
	return *algoDesc == NULL ? CUDNN_STATUS_ALLOC_FAILED : CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetAlgorithmDescriptor(cudnnAlgorithmDescriptor_t algoDesc, cudnnAlgorithm_t algorithm) {
	compatCalls++;
	if (algoDesc == NULL) return CUDNN_STATUS_BAD_PARAM;
	algoDesc->algo = algorithm;
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyAlgorithmDescriptor(cudnnAlgorithmDescriptor_t algoDesc) {
	compatCalls++;
	free(algoDesc);
	return CUDNN_STATUS_SUCCESS;
}

// cuDNN 8 filled numberToCreate handles; cu/dnn passes the address of one
// handle, so more than one would write past it: refused.
cudnnStatus_t cudnnCreateAlgorithmPerformance(cudnnAlgorithmPerformance_t *algoPerf, int numberToCreate) {
	compatCalls++;
	if (algoPerf == NULL || numberToCreate < 1) return CUDNN_STATUS_BAD_PARAM;
	if (numberToCreate > 1) return CUDNN_STATUS_NOT_SUPPORTED;
	*algoPerf = calloc(1, sizeof(struct cudnnAlgorithmPerformanceStruct));
	return *algoPerf == NULL ? CUDNN_STATUS_ALLOC_FAILED : CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetAlgorithmPerformance(cudnnAlgorithmPerformance_t algoPerf, cudnnAlgorithmDescriptor_t algoDesc,
	cudnnStatus_t status, float time, size_t memory) {
	compatCalls++;
	if (algoPerf == NULL) return CUDNN_STATUS_BAD_PARAM;
	algoPerf->desc = algoDesc;
	algoPerf->status = status;
	algoPerf->time = time;
	algoPerf->memory = memory;
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyAlgorithmPerformance(cudnnAlgorithmPerformance_t *algoPerf, int numberToDestroy) {
	compatCalls++;
	if (algoPerf == NULL) return CUDNN_STATUS_BAD_PARAM;
	if (numberToDestroy > 1) return CUDNN_STATUS_NOT_SUPPORTED;
	free(*algoPerf);
	*algoPerf = NULL;
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreatePersistentRNNPlan(cudnnRNNDescriptor_t rnnDesc, const int minibatch,
	const cudnnDataType_t dataType, cudnnPersistentRNNPlan_t *plan) {
	(void)rnnDesc; (void)minibatch; (void)dataType;
	compatCalls++;
	if (plan != NULL) *plan = NULL;
	return CUDNN_STATUS_NOT_SUPPORTED; // cuDNN 9: CUDNN_RNN_ALGO_PERSIST_DYNAMIC + cudnnBuildRNNDynamic
}

cudnnStatus_t cudnnSetPersistentRNNPlan(cudnnRNNDescriptor_t rnnDesc, cudnnPersistentRNNPlan_t plan) {
	(void)rnnDesc; (void)plan;
	compatCalls++;
	return CUDNN_STATUS_NOT_SUPPORTED;
}

cudnnStatus_t cudnnDestroyPersistentRNNPlan(cudnnPersistentRNNPlan_t plan) {
	(void)plan;
	compatCalls++;
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetRNNMatrixMathType(cudnnRNNDescriptor_t rnnDesc, cudnnMathType_t mType) {
	(void)rnnDesc; (void)mType;
	compatCalls++;
	return CUDNN_STATUS_NOT_SUPPORTED; // cuDNN 9: the mathType argument of cudnnSetRNNDescriptor_v8
}
