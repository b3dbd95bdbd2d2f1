//! Trains a CNN on MNIST, as the Keras programs do (`--model`):
//!
//! ```text
//! seed (default): Conv2D(32, 3x3, relu, input 28x28x1) -> MaxPooling2D(2x2) -> Flatten
//!                 -> Dense(10, softmax); 10 epochs, batch 32
//! convnet (keras.io's "Simple MNIST convnet"): Conv2D(32, 3x3, relu) -> MaxPooling2D(2x2)
//!                 -> Conv2D(64, 3x3, relu) -> MaxPooling2D(2x2) -> Flatten -> Dropout(0.5)
//!                 -> Dense(10, softmax); 15 epochs, batch 128, validation split 0.1
//! resnet: Conv2D(32, same)-BN-ReLU, two residual blocks, a strided block to 64 channels
//!                 with a 1x1 projection shortcut, GlobalAveragePooling2D, Dense(10) logits;
//!                 5 epochs, batch 64, validation split 0.1, Adam's rate 0.003 decayed to 0
//!                 along a cosine (so the batch normalization's moving statistics settle),
//!                 categorical cross-entropy with label smoothing 0.1
//! Adam (0.001 unless said), sparse categorical cross-entropy (unless said), accuracy; x / 255
//! ```
//!
//! `cargo run --release --example mnist` (from the repository root; offline: the data is
//! vendored in `data/mnist`). `--help` lists the flags. Pictures go to `--out-dir`.

mod explain;
mod networks;
mod pictures;
mod progress;

use clap::Parser;
use ember_kernels::conv::ConvAlgo;
use ember_model::data::load_mnist;
use ember_model::distributed::Collective;
use ember_model::losses::Metric;
use ember_model::optimizers::{Adam, CosineDecay};
use ember_model::FitOptions;
use progress::Progress;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Train the reference CNN on MNIST with Ember")]
struct Args {
    /// The network: `seed` (Keras's reference CNN: Conv2D(32) -> MaxPooling2D -> Flatten ->
    /// Dense(10); 10 epochs of batch 32), `convnet` (keras.io's "Simple MNIST convnet":
    /// two Conv2D + MaxPooling2D blocks, Dropout(0.5), Dense(10); 15 epochs of batch 128,
    /// 10% of the training images held out for validation) or `resnet` (Conv2D-BN-ReLU, two
    /// residual blocks, a strided block to 64 channels with a 1x1 projection shortcut,
    /// global average pooling, Dense(10) logits; 5 epochs of batch 64, 10% validation, Adam
    /// from 0.003 decayed to 0 along a cosine, label smoothing 0.1).
    #[arg(long, default_value = "seed")]
    model: String,
    /// Epochs to train (default: the model's).
    #[arg(long)]
    epochs: Option<usize>,
    /// Samples per step (default: the model's).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Adam's (initial) learning rate (default: the model's: 0.001, resnet 0.003).
    #[arg(long)]
    learning_rate: Option<f32>,
    /// Label smoothing: Keras's `CategoricalCrossentropy(label_smoothing)` on the one-hot
    /// labels (default: the model's: resnet 0.1, the others none, with sparse cross-entropy).
    #[arg(long)]
    label_smoothing: Option<f32>,
    /// Seed for weights, shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Threads (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Convolution algorithm: auto, direct, im2col, winograd2x3, winograd4x3, measured
    /// (used by the unfused path and backward-data; the fused step has its own kernel).
    #[arg(long, default_value = "auto")]
    conv_algo: String,
    /// Run every layer on its own instead of the fused conv+relu+pool step.
    #[arg(long)]
    no_fusion: bool,
    /// Directory with the four MNIST IDX files (raw or .gz).
    #[arg(long, default_value = "data/mnist")]
    data_dir: PathBuf,
    /// Where to write pictures and weights.
    #[arg(long, default_value = "target/mnist")]
    out_dir: PathBuf,
    /// Save the final weights here (safetensors).
    #[arg(long)]
    save: Option<PathBuf>,
    /// Save the weights for inference here, batch normalization folded into the
    /// convolutions (resnet: the file of the same network without its BatchNormalization
    /// layers, the convolutions with biases).
    #[arg(long)]
    save_folded: Option<PathBuf>,
    /// Write a checkpoint here after every epoch.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Resume from this checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Load these weights (safetensors, as `--save` writes them) and skip training.
    #[arg(long)]
    load: Option<PathBuf>,
    /// Explain 8 test digits (misclassified ones first): saliency, SmoothGrad, Integrated
    /// Gradients, Grad-CAM and occlusion pictures in the output directory. After training,
    /// or with `--load` (or a finished `--resume`) without it.
    #[arg(long)]
    explain: bool,
    /// Train on the first N training images only (0: all). With --model resnet, a few
    /// hundred steps leave batch normalization's moving statistics behind the batch
    /// statistics: validation and test accuracy can stay near chance while the training
    /// accuracy climbs, as in Keras.
    #[arg(long, default_value_t = 0)]
    train_limit: usize,
    /// Skip the pictures.
    #[arg(long)]
    no_pictures: bool,
    /// No progress bars (one line per epoch).
    #[arg(long)]
    quiet: bool,
    /// Time every layer's forward and backward calls and print where training and
    /// inference (validation and the test pass) spent their time, op by op of the plans
    /// (`Model::set_op_profiling`)
    #[arg(long)]
    profile: bool,
}

fn parse_algo(s: &str) -> Result<ConvAlgo, String> {
    Ok(match s {
        "auto" => ConvAlgo::Auto,
        "measured" => ConvAlgo::Measured,
        "direct" => ConvAlgo::Direct,
        "im2col" => ConvAlgo::Im2col,
        "winograd2x3" => ConvAlgo::Winograd2x3,
        "winograd4x3" => ConvAlgo::Winograd4x3,
        _ => return Err(format!("unknown convolution algorithm {s:?}")),
    })
}

/// Runs the program; an error is printed as a sentence (`error: ...`) with exit code 1.
/// Built with `--features mpi` and started by `mpirun -np N` (N > 1), it trains
/// data-parallel; an error on one rank then ends every rank (`MPI_Abort`, which names it).
fn main() -> std::process::ExitCode {
    let args = Args::parse();
    #[cfg(feature = "mpi")]
    {
        use ember_model::distributed::MpiCollective;
        let Some(universe) = mpi::initialize() else {
            eprintln!("error: MPI could not be initialised");
            return std::process::ExitCode::FAILURE;
        };
        let comm = MpiCollective::new(universe.world());
        if comm.size() > 1 {
            if let Err(e) = run(args, Some(&comm)) {
                eprintln!("error: rank {}: {e}", comm.rank());
                comm.abort(1);
            }
            return std::process::ExitCode::SUCCESS;
        }
    }
    match run(args, None) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Trains and reports; with `ranks`, as one rank of a data-parallel run (rank 0 prints and
/// writes every file).
fn run(args: Args, ranks: Option<&dyn Collective>) -> Result<(), Box<dyn std::error::Error>> {
    let chief = ranks.is_none_or(|c| c.rank() == 0);
    macro_rules! say {
        ($($t:tt)*) => {
            if chief {
                println!($($t)*);
            }
        };
    }
    let total = Instant::now();
    let algo = parse_algo(&args.conv_algo)?;
    let t0 = Instant::now();
    let (mut train, test) = load_mnist(&args.data_dir)?;
    if args.train_limit > 0 && args.train_limit < train.len() {
        train = train.slice(0..args.train_limit)?;
    }
    say!(
        "Loaded {} training and {} test images from {} in {:.2}s",
        train.len(),
        test.len(),
        args.data_dir.display(),
        t0.elapsed().as_secs_f64()
    );
    if let Some(c) = ranks {
        say!(
            "Data-parallel over {} ranks (MPI), {} samples per global batch",
            c.size(),
            args.batch_size.map_or("the model's".into(), |b| b.to_string())
        );
    }

    let net = networks::build(&args.model, algo)?;
    let mut model = net.model;
    model.seed(args.seed).set_threads(args.threads)?;
    let (epochs, batch_size) = (args.epochs.unwrap_or(net.epochs), args.batch_size.unwrap_or(net.batch_size));
    let validation_split = net.validation_split;
    model.set_fusion(!args.no_fusion);
    let learning_rate = args.learning_rate.unwrap_or(net.learning_rate);
    let adam = if net.cosine_decay {
        // Keras's split: floor(n * (1 - split)) samples train, the split as written (0.1).
        let split: f64 = validation_split.to_string().parse()?;
        let train_n = (train.len() as f64 * (1.0 - split)).floor() as usize;
        let steps = (epochs * train_n.div_ceil(batch_size)).max(1) as u64;
        Adam::new().learning_rate(CosineDecay { initial_learning_rate: learning_rate, decay_steps: steps, alpha: 0.0 })
    } else {
        Adam::new().learning_rate(learning_rate)
    };
    use ember_model::losses::Loss;
    let loss = match (net.loss, args.label_smoothing) {
        (
            Loss::SparseCategoricalCrossentropy { from_logits } | Loss::CategoricalCrossentropy { from_logits, .. },
            Some(ls),
        ) => Loss::CategoricalCrossentropy { from_logits, label_smoothing: ls },
        (loss, _) => loss,
    };
    model.compile(adam, loss, &[Metric::Accuracy])?;
    model.set_op_profiling(args.profile);
    if chief {
        print!("{}", model.summary());
    }
    say!("Plan ({} threads):\n{}", model.threads(), model.plan());

    let mut initial_epoch = 0;
    // In a data-parallel run rank 0 reads the checkpoint; `fit` sends its state to the rest.
    if let Some(path) = args.resume.as_ref().filter(|_| chief) {
        model.load_checkpoint(path)?;
        initial_epoch = model.epochs_done();
        say!("Resumed from {} after epoch {initial_epoch}", path.display());
    }
    let opts = FitOptions {
        epochs,
        batch_size,
        validation_split,
        shuffle: true,
        initial_epoch,
        checkpoint: args.checkpoint.clone(),
        ..FitOptions::default()
    };
    let mut progress = Progress {
        bar: None,
        quiet: args.quiet,
        silent: !chief,
        batch_size,
        start: Instant::now(),
        epoch: 0,
        batches: Vec::new(),
    };
    let history = match &args.load {
        Some(path) => {
            model.load_weights(path)?;
            say!("Loaded weights from {}; not training", path.display());
            ember_model::History::default()
        }
        None => match ranks {
            Some(c) => model.fit_data_parallel(c, &train, None, &opts, &mut progress)?,
            None => model.fit(&train, None, &opts, &mut progress)?,
        },
    };

    if ranks.is_some() && !history.epochs.is_empty() {
        let steps: usize = history.epochs.iter().map(|e| e.samples.div_ceil(batch_size)).sum();
        let train_s: f64 = history.epochs.iter().map(|e| e.seconds).sum();
        let combine = model.combine_time().as_secs_f64();
        say!(
            "Combining gradients across ranks: {:.0} us per step ({:.1}% of training time, rank 0)",
            combine * 1e6 / steps.max(1) as f64,
            100.0 * combine / train_s.max(1e-9)
        );
    }
    let t1 = Instant::now();
    let eval = match ranks {
        Some(c) => model.evaluate_data_parallel(c, &test, 256)?,
        None => model.evaluate(&test, 256)?,
    };
    say!("Test: accuracy: {:.4} - loss: {:.4} ({:.2}s)", eval.accuracy, eval.loss, t1.elapsed().as_secs_f64());
    if !history.epochs.is_empty() {
        let train: Vec<f64> = history.epochs.iter().map(|e| e.seconds).collect();
        let train_total: f64 = train.iter().sum();
        say!("Training: {train_total:.2}s in all, median {:.3}s per epoch (epochs 2..)", median_after_first(&train));
        if history.epochs.iter().any(|e| e.val_seconds.is_some()) {
            // What Keras's progress line counts as an epoch.
            let with_val: Vec<f64> = history.epochs.iter().map(|e| e.seconds + e.val_seconds.unwrap_or(0.0)).collect();
            say!("With validation: median {:.3}s per epoch (epochs 2..)", median_after_first(&with_val));
        }
    }
    if args.profile {
        say!("{}", model.op_profile());
    }

    if !chief {
        return Ok(());
    }
    std::fs::create_dir_all(&args.out_dir)?;
    if let Some(path) = &args.save {
        model.save_weights(path)?;
        println!("Weights saved to {}", path.display());
    }
    if let Some(path) = &args.save_folded {
        let folded = model.fold_batch_norm()?;
        folded.save_weights(path)?;
        println!(
            "Weights with batch normalization folded ({} tensors) saved to {}",
            folded.params().len(),
            path.display()
        );
    }
    if !args.no_pictures {
        let t2 = Instant::now();
        let files = pictures::draw_all(&mut model, &history, &progress.batches, &test, &args.out_dir)?;
        println!("Pictures ({:.2}s): {}", t2.elapsed().as_secs_f64(), files.join(", "));
    }
    if args.explain {
        let t3 = Instant::now();
        let files = explain::draw(&mut model, &test, &args.out_dir)?;
        println!("Explanations ({:.2}s): {}", t3.elapsed().as_secs_f64(), files.join(", "));
    }
    println!("Total: {:.2}s", total.elapsed().as_secs_f64());
    Ok(())
}

/// The median of `secs` after the first (the only one when there is one), the middle two's
/// mean for an even count: Python's `statistics.median`, as `scripts/keras_seed.py` reports
/// Keras's.
fn median_after_first(secs: &[f64]) -> f64 {
    let mut tail = if secs.len() > 1 { secs[1..].to_vec() } else { secs.to_vec() };
    tail.sort_by(f64::total_cmp);
    let mid = tail.len() / 2;
    if tail.len().is_multiple_of(2) {
        (tail[mid - 1] + tail[mid]) / 2.0
    } else {
        tail[mid]
    }
}
