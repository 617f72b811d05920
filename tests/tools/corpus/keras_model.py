"""Keras model of the tabular team, built layer by layer."""

from tensorflow import keras
from tensorflow.keras import layers, regularizers


def build(n_features, n_targets):
    inputs = keras.Input(shape=(n_features,))
    x = layers.GaussianNoise(0.1)(inputs)
    x = layers.Dense(128, activation="relu", kernel_regularizer=regularizers.l2(1e-4))(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(n_targets, name="prediction")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=2e-3), loss="mse")
    return model


def fit(model, x, y):
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=8, restore_best_weights=True)
    history = model.fit(x, y, validation_split=0.15, epochs=60, batch_size=512, callbacks=[stop], verbose=0)
    return history.history["val_loss"][-1]
