//! Layer configurations and `compile`.

use super::*;

#[test]
fn layers_and_compile_reject_bad_configurations() {
    run(vec![
        case!("no input shape", Error::Config(_), {
            let mut m = Sequential::new();
            m.add(Flatten::new()).add(Dense::new(3));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!(
            "no layers",
            Error::Config(_),
            Sequential::new().input(&[4]).compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        ),
        case!("conv window larger than the input", Error::LayerShape { .. }, build_with(Conv2D::new(4, (13, 3)))),
        case!("conv with zero filters", Error::Config(_), build_with(Conv2D::new(0, (3, 3)))),
        case!("conv with a zero kernel", Error::LayerShape { .. }, build_with(Conv2D::new(2, (0, 3)))),
        case!("conv with a zero stride", Error::LayerShape { .. }, build_with(Conv2D::new(2, (3, 3)).strides((0, 1)))),
        case!(
            "conv with softmax",
            Error::Config(_),
            build_with(Conv2D::new(2, (3, 3)).activation(Activation::Softmax))
        ),
        case!("conv on flat input", Error::LayerShape { .. }, {
            let mut m = Sequential::new();
            m.input(&[144]).add(Conv2D::new(2, (3, 3))).add(Flatten::new()).add(Dense::new(4));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("conv weights too many to allocate", Error::Config(_), {
            let mut m = Sequential::new();
            m.input(&[1, 1, 1 << 20]).add(Conv2D::new(1 << 30, (1, 1))).add(Flatten::new()).add(Dense::new(4));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!(
            "max pool window larger than the input",
            Error::LayerShape { .. },
            build_with(MaxPooling2D::new((13, 2)))
        ),
        case!("max pool zero window", Error::LayerShape { .. }, build_with(MaxPooling2D::new((0, 2)))),
        case!(
            "avg pool zero stride",
            Error::LayerShape { .. },
            build_with(AveragePooling2D::new((2, 2)).strides((2, 0)))
        ),
        case!("dropout rate 1", Error::Config(_), build_with(Dropout::new(1.0))),
        case!(
            "depthwise with multiplier 0",
            Error::LayerShape { .. },
            build_with(ember_model::layers::DepthwiseConv2D::new((3, 3)).depth_multiplier(0))
        ),
        case!(
            "depthwise window larger than the input",
            Error::LayerShape { .. },
            build_with(ember_model::layers::DepthwiseConv2D::new((3, 13)))
        ),
        case!(
            "depthwise with softmax",
            Error::Config(_),
            build_with(ember_model::layers::DepthwiseConv2D::new((3, 3)).activation(Activation::Softmax))
        ),
        case!(
            "depthwise padding neither valid nor same",
            Error::Config(_),
            build_with(ember_model::layers::DepthwiseConv2D::new((3, 3)).padding("full"))
        ),
        case!(
            "separable with zero filters",
            Error::Config(_),
            build_with(ember_model::layers::SeparableConv2D::new(0, (3, 3)))
        ),
        case!(
            "separable with a zero stride",
            Error::LayerShape { .. },
            build_with(ember_model::layers::SeparableConv2D::new(2, (3, 3)).strides((1, 0)))
        ),
        case!(
            "conv padding neither valid nor same",
            Error::Config(_),
            build_with(Conv2D::new(2, (3, 3)).padding("full"))
        ),
        case!(
            "pool padding neither valid nor same",
            Error::Config(_),
            build_with(MaxPooling2D::new((2, 2)).padding("causal"))
        ),
        case!(
            "batch norm momentum 1",
            Error::Config(_),
            build_with(ember_model::layers::BatchNormalization::new().momentum(1.0))
        ),
        case!(
            "batch norm epsilon 0",
            Error::Config(_),
            build_with(ember_model::layers::BatchNormalization::new().epsilon(0.0))
        ),
        case!("global average pooling of vectors", Error::LayerShape { .. }, {
            let mut m = Sequential::new();
            m.input(&[12]).add(ember_model::layers::GlobalAveragePooling2D::new()).add(Dense::new(4));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("global max pooling of vectors", Error::LayerShape { .. }, {
            let mut m = Sequential::new();
            m.input(&[12]).add(ember_model::layers::GlobalMaxPooling2D::new()).add(Dense::new(4));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("dropout rate NaN", Error::Config(_), build_with(Dropout::new(f32::NAN))),
        case!("dense on an image", Error::LayerShape { .. }, {
            let mut m = Sequential::new();
            m.input(&[12, 12, 1]).add(Dense::new(4));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("dense with zero units", Error::LayerShape { .. }, {
            let mut m = Sequential::new();
            m.input(&[12]).add(Dense::new(0));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("dense weights overflow", Error::LayerShape { .. }, {
            let mut m = Sequential::new();
            m.input(&[4]).add(Dense::new(usize::MAX / 2));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("dense weights too many to allocate", Error::Config(_), {
            let mut m = Sequential::new();
            m.input(&[1 << 22]).add(Dense::new(1 << 30));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("loss on image outputs", Error::Config(_), {
            let mut m = Sequential::new();
            m.input(&[12, 12, 1]).add(Conv2D::new(2, (3, 3)));
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[])
        }),
        case!("negative learning rate", Error::Config(_), compile_with(Adam::new().learning_rate(-1e-3))),
        case!("NaN learning rate", Error::Config(_), compile_with(Sgd::new().learning_rate(f32::NAN))),
        case!("Adam beta_1 = 1", Error::Config(_), compile_with(Adam::new().betas(1.0, 0.999))),
        case!("Adam beta_2 < 0", Error::Config(_), compile_with(Adam::new().betas(0.9, -0.1))),
        case!("Adam epsilon 0", Error::Config(_), compile_with(Adam::new().epsilon(0.0))),
        case!("Adam epsilon 1e31", Error::Config(_), compile_with(Adam::new().epsilon(1e31))),
        case!("binary cross-entropy on three outputs with integer labels", Error::Data(_), {
            let mut m = seed_model(12, 4, 3, 1);
            m.compile(Adam::new(), Loss::BINARY_CROSSENTROPY, &[]).unwrap();
            m.train_on_batch(&[0.0; 144], &[1])
        }),
        case!("dense targets narrower than the output", Error::Data(_), {
            let mut m = seed_model(12, 4, 3, 1);
            m.compile(Adam::new(), Loss::CATEGORICAL_CROSSENTROPY, &[]).unwrap();
            m.train_on_batch(&[0.0; 144], ember_model::Targets::dense(&[0.5, 0.5], 2).unwrap())
        }),
        case!("sparse cross-entropy with dense targets", Error::Data(_), {
            let mut m = seed_model(12, 4, 3, 1);
            m.compile(Adam::new(), Loss::SPARSE_CATEGORICAL_CROSSENTROPY, &[]).unwrap();
            m.train_on_batch(&[0.0; 144], ember_model::Targets::dense(&[0.0, 1.0, 0.0], 3).unwrap())
        }),
        case!(
            "label smoothing above 1",
            Error::Config(_),
            seed_model(12, 4, 3, 1).compile(
                Adam::new(),
                Loss::CategoricalCrossentropy { from_logits: false, label_smoothing: 1.5 },
                &[]
            )
        ),
        case!("binary cross-entropy with label 2", Error::Data(_), {
            let mut m = seed_model(12, 4, 1, 1);
            m.compile(Adam::new(), Loss::BINARY_CROSSENTROPY, &[]).unwrap();
            m.train_on_batch(&[0.0; 144], &[2])
        }),
        case!("RMSprop rho 1", Error::Config(_), compile_with(ember_model::optimizers::RmsProp::new().rho(1.0))),
        case!(
            "RMSprop epsilon NaN",
            Error::Config(_),
            compile_with(ember_model::optimizers::RmsProp::new().epsilon(f32::NAN))
        ),
        case!(
            "Adagrad negative initial accumulator",
            Error::Config(_),
            compile_with(ember_model::optimizers::Adagrad::new().initial_accumulator_value(-0.1))
        ),
        case!(
            "AdamW negative weight decay",
            Error::Config(_),
            compile_with(ember_model::optimizers::AdamW::new().weight_decay(-1.0))
        ),
        case!(
            "AdamW beta_1 = 1",
            Error::Config(_),
            compile_with(ember_model::optimizers::AdamW::new().betas(1.0, 0.999))
        ),
        case!("SGD momentum 2", Error::Config(_), compile_with(Sgd::new().momentum(2.0))),
        case!("unknown activation name", Error::Config(_), "gelu6".parse::<Activation>()),
        case!("more threads than any machine has", Error::Config(_), Sequential::new().set_threads(usize::MAX)),
    ]);
}
