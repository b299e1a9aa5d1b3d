namespace Neraca.Demo;

/// <summary>Deterministic Indonesian names, phone numbers and bank accounts for the demo's people: the same index gives
/// the same person on every run, so the seeded requests are identical and replay as no-ops.</summary>
static class DemoPeople
{
    static readonly string[] Given =
    [
        "Adi", "Agus", "Ahmad", "Andi", "Anisa", "Arif", "Ayu", "Bambang", "Bayu", "Bella", "Dani", "Desi", "Dian", "Dimas", "Eka",
        "Endang", "Fajar", "Fitri", "Gilang", "Hendra", "Indah", "Intan", "Joko", "Kartika", "Lestari", "Lina", "Made", "Maya",
        "Nur", "Nyoman", "Putri", "Rahmat", "Ratna", "Reza", "Rina", "Rizky", "Sari", "Sinta", "Slamet", "Sri", "Taufik", "Tri",
        "Wahyu", "Wayan", "Yanti", "Yogi", "Yusuf", "Zahra",
    ];

    static readonly string[] Family =
    [
        "Santoso", "Wijaya", "Lestari", "Pratama", "Saputra", "Hidayat", "Kusuma", "Nugroho", "Rahayu", "Setiawan", "Siregar",
        "Sitompul", "Gunawan", "Halim", "Hutapea", "Irawan", "Kurniawan", "Manurung", "Nasution", "Permana", "Purba", "Putra",
        "Sembiring", "Simanjuntak", "Susanto", "Tanjung", "Utami", "Wibowo", "Yulianti", "Harahap", "Aritonang",
    ];

    static readonly string[] Banks = ["BCA", "BRI", "BNI", "MANDIRI", "BSI", "CIMB"];

    public static string Name(int i) => $"{Given[i % Given.Length]} {Family[i * 7 % Family.Length]}";

    public static string Email(int i) => $"{Given[i % Given.Length].ToLowerInvariant()}.{Family[i * 7 % Family.Length].ToLowerInvariant()}{i}@example.co.id";

    public static string Phone(int i) => $"+62812{1000 + i * 37 % 9000:D4}{2000 + i * 53 % 8000:D4}";

    public static string Bank(int i) => Banks[i % Banks.Length];

    public static string BankAccount(int i) => $"{5_000_000_000L + i * 7_919L}";
}
