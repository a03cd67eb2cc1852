module github.com/jarzyn/jarzyn

go 1.26.8

require github.com/yalue/onnxruntime_go v1.35.0
