/// The version reported by `/health`, `ballast --version` and the OpenAPI document.
public enum BallastVersion {
    public static let current = "0.1.0"
}
